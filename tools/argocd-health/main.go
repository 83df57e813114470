// Command argocd-health runs this project's Argo CD health checks in Argo CD's own Lua engine, from its
// published module (github.com/argoproj/argo-cd/v3/util/lua, pinned in go.mod), the way Argo CD's tests
// and its application controller run them.
//
//	argocd-health [-v] [manifests/argocd]
//
// Every resource_customizations/<group>/<Kind>/health_test.yaml case (Argo CD's contribution format:
// tests: [{healthStatus: {status, message}, inputPath: testdata/x.yaml}]) is evaluated three ways, and each
// result must equal the expected status and message exactly:
//
//  1. contributed: as Argo CD's TestLuaHealthScript runs its built-in checks: the folder must be the key
//     Argo CD looks the object's script up by (lua.GetConfigMapKey of its group and kind), and
//     lua.VM{UseOpenLibs: true}.ExecuteHealthLua runs health.lua on the object;
//  2. installed: argocd-cm.yaml is read by Argo CD's settings manager (util/settings, over a fake
//     clientset: the label Argo CD selects its ConfigMap by must be there), and the resulting overrides
//     evaluate the object (lua.ResourceHealthOverrides: the script found by group/kind, run in the
//     sandbox without the open libraries, as any argocd-cm script runs);
//  3. controller: gitops-engine's health.GetResourceHealth with those overrides, what the application
//     controller and sync waves see: an object being deleted is "Progressing: Pending deletion" there
//     before any script runs, so deletion cases expect that instead.
//
// It also fails when a health.lua has no health_test.yaml, a testdata file is used by no case, or a
// folder has no script in argocd-cm.yaml. The last line says how many evaluations passed and failed; the
// exit status is 1 on any failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	"github.com/argoproj/gitops-engine/pkg/health"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

const (
	customizations = "resource_customizations"
	configMapFile  = "argocd-cm.yaml"
	namespace      = "argocd"
)

// The health_test.yaml format of Argo CD's util/lua tests.
type testFile struct {
	Tests []testCase `json:"tests"`
}

type testCase struct {
	InputPath    string              `json:"inputPath"`
	HealthStatus health.HealthStatus `json:"healthStatus"`
}

type runner struct {
	verbose        bool
	passed, failed int
}

func (r *runner) check(name, how string, got *health.HealthStatus, err error, want health.HealthStatus) {
	switch {
	case err != nil:
		r.failed++
		fmt.Printf("FAIL %s [%s]: %v\n", name, how, err)
	case got == nil:
		r.failed++
		fmt.Printf("FAIL %s [%s]: no health (no script found)\n", name, how)
	case *got != want:
		r.failed++
		fmt.Printf("FAIL %s [%s]:\n  want %s %q\n  got  %s %q\n", name, how, want.Status, want.Message, got.Status, got.Message)
	default:
		r.passed++
		if r.verbose {
			fmt.Printf("ok   %s [%s]: %s %q\n", name, how, got.Status, got.Message)
		}
	}
}

func (r *runner) problem(format string, args ...any) {
	r.failed++
	fmt.Printf("FAIL "+format+"\n", args...)
}

func readObject(path string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// overridesFromConfigMap reads argocd-cm.yaml as Argo CD does: its settings manager over a clientset
// holding that ConfigMap in Argo CD's namespace.
func overridesFromConfigMap(path string) (lua.ResourceHealthOverrides, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cm.Namespace = namespace
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	manager := settings.NewSettingsManager(ctx, fake.NewClientset(&cm), namespace)
	overrides, err := manager.GetResourceOverrides()
	if err != nil {
		return nil, fmt.Errorf("Argo CD's settings manager cannot read %s: %w", path, err)
	}
	return overrides, nil
}

func main() {
	verbose := flag.Bool("v", false, "print every evaluation, not only failures")
	flag.Parse()
	root := "manifests/argocd"
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	log.SetLevel(log.WarnLevel) // the settings manager's informers say a lot at info level
	r := &runner{verbose: *verbose}

	overrides, err := overridesFromConfigMap(filepath.Join(root, configMapFile))
	if err != nil {
		r.problem("%v", err)
	}
	base := filepath.Join(root, customizations)
	used := map[string]bool{}
	kinds := 0
	err = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "health.lua" {
			return nil
		}
		kinds++
		dir := filepath.Dir(path)
		key, _ := filepath.Rel(base, dir)
		key = filepath.ToSlash(key)
		script, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if overrides != nil && overrides[key].HealthLua != string(script) {
			r.problem("%s: argocd-cm.yaml has no or another script for %s (run `make crds`)", path, key)
		}
		data, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			r.problem("%s has no health_test.yaml: %v", key, err)
			return nil
		}
		var tests testFile
		if err := yaml.UnmarshalStrict(data, &tests); err != nil {
			r.problem("%s/health_test.yaml: %v", key, err)
			return nil
		}
		if len(tests.Tests) == 0 {
			r.problem("%s/health_test.yaml has no tests", key)
		}
		for _, tc := range tests.Tests {
			name := key + "/" + tc.InputPath
			input := filepath.Join(dir, tc.InputPath)
			used[input] = true
			obj, err := readObject(input)
			if err != nil {
				r.problem("%s: %v", name, err)
				continue
			}
			if got := lua.GetConfigMapKey(obj.GroupVersionKind()); got != key {
				r.problem("%s: a %s object, but Argo CD would look its check up under %s/", name, got, key)
				continue
			}
			// 1. contributed, as upstream's TestLuaHealthScript
			got, err := lua.VM{UseOpenLibs: true}.ExecuteHealthLua(obj, string(script))
			r.check(name, "contributed", got, err, tc.HealthStatus)
			if overrides == nil {
				continue
			}
			// 2. installed through argocd-cm
			got, err = overrides.GetResourceHealth(obj)
			r.check(name, "argocd-cm", got, err, tc.HealthStatus)
			// 3. what the application controller sees
			want := tc.HealthStatus
			if obj.GetDeletionTimestamp() != nil {
				want = health.HealthStatus{Status: health.HealthStatusProgressing, Message: "Pending deletion"}
			}
			got, err = health.GetResourceHealth(obj, overrides)
			r.check(name, "controller", got, err, want)
		}
		return nil
	})
	if err != nil {
		r.problem("%s: %v", base, err)
	}
	if kinds == 0 {
		r.problem("no health.lua under %s", base)
	}
	// testdata no case uses
	var orphans []string
	_ = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(path)) == "testdata" && !used[path] {
			orphans = append(orphans, path)
		}
		return nil
	})
	sort.Strings(orphans)
	for _, path := range orphans {
		r.problem("%s is used by no case of its health_test.yaml", path)
	}
	// argocd-cm scripts without a folder
	if overrides != nil {
		for key, override := range overrides {
			if override.HealthLua == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(base, filepath.FromSlash(key), "health.lua")); errors.Is(err, fs.ErrNotExist) {
				r.problem("argocd-cm.yaml has a health check for %s, which has no folder in %s", key, base)
			}
		}
	}
	fmt.Printf("%d kinds, %d cases, each run in Argo CD's Lua engine 3 ways (contributed, argocd-cm, controller)\n",
		kinds, len(used))
	fmt.Printf("argocd-health: %d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 || r.passed == 0 {
		os.Exit(1)
	}
}
