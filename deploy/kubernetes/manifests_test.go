// Package kubernetes holds Headcount's example Kubernetes manifests and the
// test that checks them: every document decodes strictly (an unknown or
// misspelled field fails) into the Kubernetes API type of its kind, and the
// pieces fit together (selectors, ports, probes, keys, seeds, timing).
//
// It is a module of its own so that the main module does not depend on
// k8s.io/api.
package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded documents of every *.yaml file in this
// directory, by kind.
type manifests struct {
	services    map[string]*corev1.Service
	deployments map[string]*appsv1.Deployment
	pdbs        map[string]*policyv1.PodDisruptionBudget
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		services:    map[string]*corev1.Service{},
		deployments: map[string]*appsv1.Deployment{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		secrets:     map[string]*corev1.Secret{},
		configMaps:  map[string]*corev1.ConfigMap{},
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", f, i+1)
			if err := m.add([]byte(doc)); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// add decodes doc strictly into the type its apiVersion and kind name.
func (m *manifests) add(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	strict := func(into any) error { return yaml.UnmarshalStrict(doc, into) }
	name := head.Metadata.Name
	if name == "" {
		return fmt.Errorf("%s without metadata.name", head.Kind)
	}
	switch head.APIVersion + " " + head.Kind {
	case "v1 Service":
		o := &corev1.Service{}
		m.services[name] = o
		return strict(o)
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		m.deployments[name] = o
		return strict(o)
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		m.pdbs[name] = o
		return strict(o)
	case "v1 Secret":
		o := &corev1.Secret{}
		m.secrets[name] = o
		return strict(o)
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps[name] = o
		return strict(o)
	}
	return fmt.Errorf("unexpected apiVersion %q kind %q: add it to the test", head.APIVersion, head.Kind)
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	m := &manifests{deployments: map[string]*appsv1.Deployment{}}
	err := m.add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n"))
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("misspelled field: err = %v", err)
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if len(m.services) != 2 || len(m.deployments) != 1 || len(m.pdbs) != 1 || len(m.secrets) != 1 || len(m.configMaps) != 1 {
		t.Fatalf("want 2 Services, 1 Deployment, PodDisruptionBudget, Secret and ConfigMap; got %d %d %d %d %d",
			len(m.services), len(m.deployments), len(m.pdbs), len(m.secrets), len(m.configMaps))
	}
}

func TestManifestsFitTogether(t *testing.T) {
	m := load(t)
	dep := m.deployments["headcount"]
	if dep == nil {
		t.Fatal("no Deployment headcount")
	}
	pod := dep.Spec.Template
	podLabels := labels.Set(pod.Labels)
	sel, err := metaSelector(dep.Spec.Selector.MatchLabels)
	if err != nil || !sel.Matches(podLabels) {
		t.Fatalf("Deployment selector does not match its pods: %v", err)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}

	// Gossip: headless, not-ready addresses published, TCP and UDP to the container's ports.
	g := m.services["headcount-gossip"]
	if g == nil || g.Spec.ClusterIP != corev1.ClusterIPNone || !g.Spec.PublishNotReadyAddresses {
		t.Fatal("headcount-gossip must be headless with publishNotReadyAddresses")
	}
	protos := map[corev1.Protocol]bool{}
	for _, p := range g.Spec.Ports {
		cp, ok := ports[p.TargetPort.String()]
		if !ok || cp.ContainerPort != 7946 || cp.Protocol != p.Protocol || p.Port != 7946 {
			t.Errorf("gossip port %s does not reach container port 7946/%s", p.Name, p.Protocol)
		}
		protos[p.Protocol] = true
	}
	if !protos[corev1.ProtocolTCP] || !protos[corev1.ProtocolUDP] {
		t.Errorf("gossip needs TCP and UDP, got %v", protos)
	}
	for name, s := range m.services {
		sel, _ := metaSelector(s.Spec.Selector)
		if !sel.Matches(podLabels) {
			t.Errorf("Service %s selects no headcount pod", name)
		}
	}
	if h := m.services["headcount"]; h == nil || ports[h.Spec.Ports[0].TargetPort.String()].ContainerPort != 4000 {
		t.Error("Service headcount must reach the http port 4000")
	}

	// Probes on the HTTP port, preStop before the graceful stop, grace period above both.
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Fatal("want readiness on /readyz and liveness on /healthz")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("want a preStop sleep (the image has no shell)")
	}
	cfg := agentConfig(t, m)
	shutdown, err := time.ParseDuration(cfg["shutdown-timeout"])
	if err != nil {
		t.Fatalf("shutdown-timeout in the config: %v", err)
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= preStop+shutdown {
		t.Errorf("terminationGracePeriodSeconds %s must exceed preStop %s + shutdown-timeout %s", grace, preStop, shutdown)
	}

	// The seed is the headless Service; the process runs as non-root.
	if !strings.HasPrefix(cfg["join"], g.Name+":") && cfg["join"] != g.Name {
		t.Errorf("join %q is not the headless Service %s", cfg["join"], g.Name)
	}
	if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Error("pods must run as non-root")
	}

	// Every key file the config names is mounted from the Secret.
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm.MountPath
	}
	sec := m.secrets["headcount"]
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != sec.Name {
			t.Errorf("volume %s uses Secret %s", v.Name, v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			if _, ok := sec.StringData[it.Key]; !ok {
				t.Errorf("Secret %s has no key %s", sec.Name, it.Key)
			}
			delete(cfg, keyFlagFor(cfg, mounts[v.Name]+"/"+it.Path))
		}
	}
	for _, k := range []string{"jwt-secret-file", "gossip-key-file"} {
		if _, left := cfg[k]; left {
			t.Errorf("%s %q is not a file mounted from the Secret", k, cfg[k])
		}
	}
	// The config file the container is told to read is the one the ConfigMap mounts.
	if !strings.Contains(strings.Join(c.Args, " "), "--config "+mounts["config"]+"/headcount.yaml") {
		t.Errorf("args %q do not read the mounted config", c.Args)
	}

	pdb := m.pdbs["headcount"]
	psel, err := metaSelector(pdb.Spec.Selector.MatchLabels)
	if err != nil || !psel.Matches(podLabels) || pdb.Spec.MaxUnavailable == nil {
		t.Error("the PodDisruptionBudget must select the pods and bound maxUnavailable")
	}
}

// agentConfig returns the flat key: value pairs of the agent's config file in
// the ConfigMap.
func agentConfig(t *testing.T, m *manifests) map[string]string {
	t.Helper()
	cm := m.configMaps["headcount"]
	if cm == nil {
		t.Fatal("no ConfigMap headcount")
	}
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["headcount.yaml"]), &raw); err != nil {
		t.Fatalf("headcount.yaml: %v", err)
	}
	out := map[string]string{}
	for k, v := range raw {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// keyFlagFor returns the config key whose value is path, or "".
func keyFlagFor(cfg map[string]string, path string) string {
	for k, v := range cfg {
		if v == path {
			return k
		}
	}
	return ""
}

func metaSelector(ml map[string]string) (labels.Selector, error) {
	if len(ml) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	return labels.SelectorFromSet(ml), nil
}

// kubectl apply -f on this directory applies *.yaml, *.yml and *.json: all of
// them must be checked here.
func TestNoStrayFiles(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json") {
			t.Errorf("%s: kubectl would apply it but this test does not check it; use .yaml", n)
		}
	}
}
