// tools/argocd: Argo CD's application controller, repo server and git ask-pass helper, from the argo-cd
// module pinned in go.mod. Argo CD ships one multi-call binary (its cmd/main.go) that picks the program
// by the name it is called by (or ARGOCD_BINARY_NAME); this is the same, for the three programs a sync
// needs (no API server, UI, Dex, ApplicationSet or notifications controller).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	// As Argo CD's own main: klog logs through logrus with the configured level and format.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	name := filepath.Base(os.Args[0])
	if val := os.Getenv("ARGOCD_BINARY_NAME"); val != "" {
		name = val
	}
	var command *cobra.Command
	switch name {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-git-ask-pass":
		command = gitaskpass.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "%s: call me as argocd-application-controller, argocd-repo-server or "+
			"argocd-git-ask-pass (a link of that name, or ARGOCD_BINARY_NAME)\n", name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
