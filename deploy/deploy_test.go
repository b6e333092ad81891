// Package deploy_test checks the reference Kubernetes manifests in
// deploy/kubernetes and deploy/redis.
//
// Every YAML document is decoded strictly into its Kubernetes API type
// with the decoder the API server uses for field validation "Strict":
// unknown and duplicate fields are errors, and field names are matched
// case-sensitively. (encoding/json with DisallowUnknownFields is not
// enough: it matches names case-insensitively, so readOnlyRootFileSystem
// would silently set readOnlyRootFilesystem.) The tests then check the
// pods' security settings, that the objects reference each other
// consistently (selectors, ports, Secrets, the files the configuration
// names), that mcpgate's own loader accepts the ConfigMap, and that the
// reference Redis start script works against a real redis-server.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifestDirs are the directories whose *.yaml files are checked.
func manifestDirs() []string { return []string{"kubernetes", "redis"} }

// Names of the objects the checks below look for.
const (
	gatewayName        = "mcpgate"
	gatewayConfigMap   = "mcpgate-config"
	redisName          = "mcpgate-redis"
	redisConfigMap     = "mcpgate-redis-config"
	redisSecret        = "mcpgate-redis"
	redisSecretKey     = "password"
	gatewayContainer   = "mcpgate"
	redisContainerName = "redis"
)

// object is one decoded document.
type object struct {
	file  string // e.g. "kubernetes/deployment.yaml"
	index int    // document number in the file, from 0
	kind  string
	name  string
	obj   runtime.Object
}

func (o object) String() string { return fmt.Sprintf("%s#%d (%s %s)", o.file, o.index, o.kind, o.name) }

// newObject returns an empty object of the type a document declares, for
// the kinds these manifests may contain. Anything else is an error.
func newObject(apiVersion, kind string) (runtime.Object, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	}
	return nil, fmt.Errorf("unsupported apiVersion %q kind %q", apiVersion, kind)
}

// decoder decodes documents strictly.
type decoder struct{ ser *kjson.Serializer }

func newDecoder(tb testing.TB) *decoder {
	tb.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			tb.Fatal(err)
		}
	}
	return &decoder{ser: kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})}
}

// decode decodes one YAML document strictly into the type its apiVersion
// and kind name, and requires a name and no namespace (the manifests are
// applied with kubectl -n).
func (d *decoder) decode(doc []byte) (runtime.Object, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	into, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	obj, _, err := d.ser.Decode(doc, nil, into)
	if err != nil {
		return nil, err
	}
	if obj != into {
		return nil, fmt.Errorf("decoded into %T, want %T", obj, into)
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	if m.GetName() == "" {
		return nil, errors.New("metadata.name is required")
	}
	if m.GetNamespace() != "" {
		return nil, fmt.Errorf("metadata.namespace %q: leave it out, apply with kubectl -n", m.GetNamespace())
	}
	return obj, nil
}

// splitDocuments splits a multi-document YAML stream on "---" lines and
// drops documents holding only comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator().Split(string(data), -1) {
		if hasContent(d) {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func docSeparator() *regexp.Regexp { return regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`) }

func hasContent(doc string) bool {
	for line := range strings.SplitSeq(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// loadObjects decodes every document of every manifest.
func loadObjects(t *testing.T) []object {
	t.Helper()
	d := newDecoder(t)
	var objs []object
	for _, dir := range manifestDirs() {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no manifests in %s", dir)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitDocuments(data)
			if len(docs) == 0 {
				t.Errorf("%s holds no document", f)
			}
			for i, doc := range docs {
				obj, err := d.decode(doc)
				if err != nil {
					t.Errorf("%s#%d: %v", filepath.ToSlash(f), i, err)
					continue
				}
				m := obj.(metav1.Object)
				kind := reflect.TypeOf(obj).Elem().Name()
				objs = append(objs, object{file: filepath.ToSlash(f), index: i, kind: kind, name: m.GetName(), obj: obj})
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return objs
}

// manifests indexes the decoded objects by kind and name.
type manifests map[string]object

func index(t *testing.T, objs []object) manifests {
	t.Helper()
	m := manifests{}
	for _, o := range objs {
		k := o.kind + "/" + o.name
		if prev, dup := m[k]; dup {
			t.Errorf("%s and %s both define %s", prev, o, k)
		}
		m[k] = o
	}
	return m
}

// get returns the object of kind and name, failing the test if absent.
func get[T runtime.Object](t *testing.T, m manifests, name string) T {
	t.Helper()
	var zero T
	kind := reflect.TypeOf(zero).Elem().Name()
	o, ok := m[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s %q in the manifests", kind, name)
	}
	return o.obj.(T)
}

// all holds the objects the cross-checks need.
type all struct {
	deploy      *appsv1.Deployment
	sts         *appsv1.StatefulSet
	svc         *corev1.Service
	adminSvc    *corev1.Service
	redisSvc    *corev1.Service
	pdb         *policyv1.PodDisruptionBudget
	netpol      *networkingv1.NetworkPolicy
	redisNetpol *networkingv1.NetworkPolicy
	sa          *corev1.ServiceAccount
	cm          *corev1.ConfigMap
	redisCM     *corev1.ConfigMap
	m           manifests
}

func loadAll(t *testing.T) all {
	t.Helper()
	m := index(t, loadObjects(t))
	return all{
		deploy:      get[*appsv1.Deployment](t, m, gatewayName),
		sts:         get[*appsv1.StatefulSet](t, m, redisName),
		svc:         get[*corev1.Service](t, m, gatewayName),
		adminSvc:    get[*corev1.Service](t, m, gatewayName+"-admin"),
		redisSvc:    get[*corev1.Service](t, m, redisName),
		pdb:         get[*policyv1.PodDisruptionBudget](t, m, gatewayName),
		netpol:      get[*networkingv1.NetworkPolicy](t, m, gatewayName),
		redisNetpol: get[*networkingv1.NetworkPolicy](t, m, redisName),
		sa:          get[*corev1.ServiceAccount](t, m, gatewayName),
		cm:          get[*corev1.ConfigMap](t, m, gatewayConfigMap),
		redisCM:     get[*corev1.ConfigMap](t, m, redisConfigMap),
		m:           m,
	}
}

// problems collects what a check found wrong.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func report(t *testing.T, what string, p problems) {
	t.Helper()
	for _, s := range p {
		t.Errorf("%s: %s", what, s)
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := loadObjects(t)
	m := index(t, objs)
	want := []string{
		"ServiceAccount/mcpgate", "ConfigMap/mcpgate-config", "Deployment/mcpgate",
		"Service/mcpgate", "Service/mcpgate-admin", "PodDisruptionBudget/mcpgate", "NetworkPolicy/mcpgate",
		"ConfigMap/mcpgate-redis-config", "StatefulSet/mcpgate-redis", "Service/mcpgate-redis", "NetworkPolicy/mcpgate-redis",
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}
	for _, o := range objs {
		if o.kind == "Secret" {
			t.Errorf("%s: Secrets are created with kubectl create secret (README.md), never shipped", o)
		}
	}
}

// TestStrictDecodingRejects proves that the decoder used above refuses
// what kubectl apply --validate=strict refuses, on mutated copies of the
// real deployment.yaml.
func TestStrictDecodingRejects(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := newDecoder(t)
	if _, err := d.decode(orig); err != nil {
		t.Fatalf("the unmodified deployment.yaml: %v", err)
	}
	for _, tc := range []struct {
		name, old, new, wantErr string
	}{
		{"field in the wrong case", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "readOnlyRootFileSystem"},
		{"misspelled field", "maxSurge: 1", "maxSurges: 1", "maxSurges"},
		{"unknown top-level key", "kind: Deployment\n", "kind: Deployment\nstatus2: {}\n", "status2"},
		{"unknown pod field", "      enableServiceLinks: false\n", "      enableServiceLinks: false\n      hostNetwrok: true\n", "hostNetwrok"},
		{"duplicate key", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", "replicas"},
		{"wrong type", "replicas: 2", "replicas: two", "replicas"},
		{"misspelled kind", "kind: Deployment", "kind: Deploymnet", "Deploymnet"},
		{"unknown apiVersion", "apiVersion: apps/v1", "apiVersion: apps/v1beta9", "apps/v1beta9"},
		{"missing apiVersion", "apiVersion: apps/v1\n", "\n", "unsupported"},
		{"namespace set", "  name: mcpgate\n  labels:", "  name: mcpgate\n  namespace: default\n  labels:", "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Count(orig, []byte(tc.old)) == 0 {
				t.Fatalf("deployment.yaml does not contain %q: update the test", tc.old)
			}
			mutated := bytes.Replace(orig, []byte(tc.old), []byte(tc.new), 1)
			_, err := d.decode(mutated)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestSplitDocuments(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"a: 1\n", 1},
		{"---\na: 1\n---\nb: 2\n", 2},
		{"# only a comment\n---\na: 1\n--- # trailing\nb: 2\n---\n", 2},
		{"a: |\n  ---x\n  y\n", 1}, // "---" not at the line start
		{"", 0},
	} {
		if got := len(splitDocuments([]byte(tc.in))); got != tc.want {
			t.Errorf("splitDocuments(%q) = %d documents, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzDecode checks that the strict decoder never panics and accepts only
// the supported kinds, named.
func FuzzDecode(f *testing.F) {
	for _, dir := range manifestDirs() {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			for _, doc := range splitDocuments(data) {
				f.Add(doc)
			}
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {Ports: []}\n"))
	d := newDecoder(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		obj, err := d.decode(doc)
		if err != nil {
			return
		}
		gvk := obj.GetObjectKind().GroupVersionKind()
		if _, err := newObject(gvk.GroupVersion().String(), gvk.Kind); err != nil {
			t.Fatalf("accepted %v: %v", gvk, err)
		}
		if obj.(metav1.Object).GetName() == "" {
			t.Fatal("accepted an object without a name")
		}
	})
}

func BenchmarkDecodeManifests(b *testing.B) {
	var docs [][]byte
	for _, dir := range manifestDirs() {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				b.Fatal(err)
			}
			docs = append(docs, splitDocuments(data)...)
		}
	}
	d := newDecoder(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, doc := range docs {
			if _, err := d.decode(doc); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// checkPod holds the security bar every pod meets.
func checkPod(spec *corev1.PodSpec) problems {
	var p problems
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.addf("automountServiceAccountToken must be false")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		p.addf("hostNetwork, hostPID and hostIPC must be false")
	}
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
		p.addf("shareProcessNamespace must be off")
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
		p.addf("no pod securityContext")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		p.addf("pod runAsNonRoot must be true")
	}
	if psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.RunAsGroup == nil || *psc.RunAsGroup == 0 {
		p.addf("pod runAsUser and runAsGroup must be set and not 0")
	}
	if psc.FSGroup == nil || *psc.FSGroup == 0 {
		p.addf("pod fsGroup must be set and not 0 (the group that reads the 0440 Secret files)")
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.addf("pod seccompProfile must be RuntimeDefault")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			p.addf("volume %s: hostPath", v.Name)
		}
		if s := v.Secret; s != nil {
			for _, it := range s.Items {
				checkMode(&p, "secret "+s.SecretName+" "+it.Key, it.Mode, s.DefaultMode)
			}
			if len(s.Items) == 0 {
				checkMode(&p, "secret "+s.SecretName, nil, s.DefaultMode)
			}
		}
		if pr := v.Projected; pr != nil {
			for _, src := range pr.Sources {
				if s := src.Secret; s != nil {
					for _, it := range s.Items {
						checkMode(&p, "secret "+s.Name+" "+it.Key, it.Mode, pr.DefaultMode)
					}
					if len(s.Items) == 0 {
						checkMode(&p, "secret "+s.Name, nil, pr.DefaultMode)
					}
				}
				if src.ServiceAccountToken != nil {
					p.addf("volume %s: projects a service account token", v.Name)
				}
			}
		}
	}
	containers := slices.Concat(spec.InitContainers, spec.Containers)
	if len(spec.Containers) == 0 {
		p.addf("no containers")
	}
	for _, c := range containers {
		checkContainer(&p, c, psc)
	}
	return p
}

// checkMode requires a Secret file readable by its owner and group only.
func checkMode(p *problems, what string, item, def *int32) {
	mode := int32(0o644) // the Kubernetes default
	if def != nil {
		mode = *def
	}
	if item != nil {
		mode = *item
	}
	if mode&^0o440 != 0 {
		p.addf("%s: mode %04o, want 0440 or stricter (mcpgate refuses secrets others can read)", what, mode)
	}
}

func checkContainer(p *problems, c corev1.Container, psc *corev1.PodSecurityContext) {
	sc := c.SecurityContext
	if sc == nil {
		p.addf("container %s: no securityContext", c.Name)
		return
	}
	if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		p.addf("container %s: runs as root", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.addf("container %s: readOnlyRootFilesystem must be true", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.addf("container %s: allowPrivilegeEscalation must be false", c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		p.addf("container %s: privileged", c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		p.addf("container %s: capabilities must drop ALL", c.Name)
	} else if len(sc.Capabilities.Add) > 0 {
		p.addf("container %s: adds capabilities %v", c.Name, sc.Capabilities.Add)
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.addf("container %s: seccompProfile must be RuntimeDefault", c.Name)
	}
	if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
		p.addf("container %s: procMount %s", c.Name, *sc.ProcMount)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			p.addf("container %s: no %s request", c.Name, r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			p.addf("container %s: no %s limit", c.Name, r)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			p.addf("container %s: env %s from a Secret: mount secrets as files", c.Name, e.Name)
		}
	}
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			p.addf("container %s: envFrom Secret %s: mount secrets as files", c.Name, e.SecretRef.Name)
		}
	}
	for _, port := range c.Ports {
		if port.HostPort != 0 {
			p.addf("container %s: hostPort %d", c.Name, port.HostPort)
		}
	}
}

func container(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

// containerPort resolves a named or numbered port of c.
func containerPort(c *corev1.Container, port intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// parsedConfig loads the mcpgate configuration the Deployment runs with,
// through mcpgate's own strict loader.
func parsedConfig(t *testing.T, a all) *config.Config {
	t.Helper()
	c := container(&a.deploy.Spec.Template.Spec, gatewayContainer)
	if c == nil {
		t.Fatalf("no container %q", gatewayContainer)
	}
	path, err := configArg(c)
	if err != nil {
		t.Fatal(err)
	}
	src, err := resolve(&a.deploy.Spec.Template.Spec, c, path)
	if err != nil {
		t.Fatalf("--config %s: %v", path, err)
	}
	if src.kind != "ConfigMap" || src.name != a.cm.Name {
		t.Fatalf("--config %s is %s, want a key of ConfigMap %s", path, src, a.cm.Name)
	}
	data, ok := a.cm.Data[src.key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %q", a.cm.Name, src.key)
	}
	cfg, err := config.Parse([]byte(data))
	if err != nil {
		t.Fatalf("mcpgate refuses ConfigMap %s key %s:\n%v", a.cm.Name, src.key, err)
	}
	return cfg
}

// configArg returns the path after --config in c's command line.
func configArg(c *corev1.Container) (string, error) {
	argv := slices.Concat(c.Command, c.Args)
	if !slices.Contains(argv, "serve") {
		return "", fmt.Errorf("container %s does not run serve: %q", c.Name, argv)
	}
	for i, a := range argv {
		if a == "--config" && i+1 < len(argv) {
			return argv[i+1], nil
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("container %s has no --config: %q", c.Name, argv)
}

// fileSource is where a file in a container comes from.
type fileSource struct {
	kind   string // Secret, ConfigMap, EmptyDir, PersistentVolumeClaim or the volume type
	name   string // the Secret's, ConfigMap's or volume's name
	key    string // the Secret's or ConfigMap's key
	mode   int32  // the file's mode (Secret and ConfigMap)
	volume corev1.Volume
}

func (s fileSource) String() string {
	if s.key != "" {
		return fmt.Sprintf("%s %s key %s", s.kind, s.name, s.key)
	}
	return fmt.Sprintf("%s %s", s.kind, s.name)
}

// resolve finds what volume, and which Secret or ConfigMap key, provides
// the file at p in container c.
func resolve(spec *corev1.PodSpec, c *corev1.Container, p string) (fileSource, error) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fileSource{}, fmt.Errorf("%q is not a clean absolute path", p)
	}
	var mount *corev1.VolumeMount
	var rel string
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		mp := strings.TrimRight(m.MountPath, "/")
		r, ok := strings.CutPrefix(p, mp+"/")
		if p == mp {
			r, ok = "", true
		}
		if ok && (mount == nil || len(mp) > len(strings.TrimRight(mount.MountPath, "/"))) {
			mount, rel = m, r
		}
	}
	if mount == nil {
		return fileSource{}, fmt.Errorf("%s is under no volumeMount of container %s", p, c.Name)
	}
	if mount.SubPath != "" {
		rel = path.Join(mount.SubPath, rel)
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == mount.Name {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil {
		// A StatefulSet's volumeClaimTemplates.
		return fileSource{kind: "PersistentVolumeClaim", name: mount.Name}, nil
	}
	switch {
	case vol.Secret != nil:
		return keyed("Secret", vol.Secret.SecretName, rel, vol.Secret.Items, vol.Secret.DefaultMode, *vol)
	case vol.ConfigMap != nil:
		return keyed("ConfigMap", vol.ConfigMap.Name, rel, vol.ConfigMap.Items, vol.ConfigMap.DefaultMode, *vol)
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			var s fileSource
			var err error
			switch {
			case src.Secret != nil:
				s, err = keyed("Secret", src.Secret.Name, rel, src.Secret.Items, vol.Projected.DefaultMode, *vol)
			case src.ConfigMap != nil:
				s, err = keyed("ConfigMap", src.ConfigMap.Name, rel, src.ConfigMap.Items, vol.Projected.DefaultMode, *vol)
			default:
				continue
			}
			if err == nil {
				return s, nil
			}
		}
		return fileSource{}, fmt.Errorf("%s: no source of projected volume %s provides %q", p, vol.Name, rel)
	case vol.EmptyDir != nil:
		return fileSource{kind: "EmptyDir", name: vol.Name, volume: *vol}, nil
	case vol.PersistentVolumeClaim != nil:
		return fileSource{kind: "PersistentVolumeClaim", name: vol.Name, volume: *vol}, nil
	}
	return fileSource{kind: "other", name: vol.Name, volume: *vol}, nil
}

// keyed resolves rel within a Secret or ConfigMap projection.
func keyed(kind, name, rel string, items []corev1.KeyToPath, def *int32, vol corev1.Volume) (fileSource, error) {
	mode := int32(0o644)
	if def != nil {
		mode = *def
	}
	if len(items) == 0 {
		if rel == "" || strings.Contains(rel, "/") {
			return fileSource{}, fmt.Errorf("%s %s has no key %q", kind, name, rel)
		}
		return fileSource{kind: kind, name: name, key: rel, mode: mode, volume: vol}, nil
	}
	for _, it := range items {
		if path.Clean(it.Path) == rel {
			if it.Mode != nil {
				mode = *it.Mode
			}
			return fileSource{kind: kind, name: name, key: it.Key, mode: mode, volume: vol}, nil
		}
	}
	return fileSource{}, fmt.Errorf("%s %s projects no item to %q", kind, name, rel)
}

// fileSettings returns every non-empty setting of cfg whose key is "file"
// or ends in "_file", by its dotted key.
func fileSettings(cfg *config.Config) map[string]string {
	out := map[string]string{}
	var walk func(v reflect.Value, key string)
	walk = func(v reflect.Value, key string) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), key)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				k := name
				if key != "" {
					k = key + "." + name
				}
				fv := v.Field(i)
				if fv.Kind() == reflect.String && (name == "file" || strings.HasSuffix(name, "_file")) {
					if fv.String() != "" {
						out[k] = fv.String()
					}
					continue
				}
				walk(fv, k)
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", key, i))
			}
		case reflect.Map:
			iter := v.MapRange()
			for iter.Next() {
				walk(iter.Value(), fmt.Sprintf("%s.%v", key, iter.Key()))
			}
		}
	}
	walk(reflect.ValueOf(cfg), "")
	return out
}

func TestFileSettings(t *testing.T) {
	cfg := &config.Config{}
	cfg.Store.PasswordFile = "/a"
	cfg.Server.TLS = &config.ListenerTLS{CertFile: "/b", KeyFile: "/c"}
	cfg.Credentials.Mint.SigningKeys = []config.SigningKey{{File: "/d"}}
	want := map[string]string{
		"store.password_file": "/a", "server.tls.cert_file": "/b", "server.tls.key_file": "/c",
		"credentials.mint.signing_keys[0].file": "/d",
	}
	got := fileSettings(cfg)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fileSettings = %v, want %v", got, want)
	}
}

// checkGateway checks the mcpgate Deployment against its configuration.
func checkGateway(d *appsv1.Deployment, cfg *config.Config, sa *corev1.ServiceAccount) problems {
	p := checkPod(&d.Spec.Template.Spec)
	spec := &d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		p.addf("replicas must be at least 2")
	}
	if s := d.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.String() != "0" {
		p.addf("strategy must be RollingUpdate with maxUnavailable 0")
	}
	if spec.ServiceAccountName != sa.Name || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		p.addf("serviceAccountName must be %s, which mounts no token", sa.Name)
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		p.addf("no preferred pod anti-affinity")
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		p.addf("no topologySpreadConstraints")
	}
	c := container(spec, gatewayContainer)
	if c == nil {
		p.addf("no container %s", gatewayContainer)
		return p
	}
	listenPort := func(key, addr string) int32 {
		_, port, err := net.SplitHostPort(addr)
		n, err2 := strconv.Atoi(port)
		if err != nil || err2 != nil {
			p.addf("%s %q has no port", key, addr)
		}
		return int32(n)
	}
	adminPort := listenPort("admin.listen", cfg.Admin.Listen)
	for _, want := range []struct {
		name string
		port int32
	}{{"https", listenPort("server.listen", cfg.Server.Listen)}, {"admin", adminPort}} {
		if cp, ok := containerPort(c, intstr.FromString(want.name)); !ok || cp.ContainerPort != want.port {
			p.addf("container port %s must be %d (the configuration's)", want.name, want.port)
		}
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, ""}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			p.addf("%s probe must be an httpGet", pr.name)
		case pr.path != "" && pr.probe.HTTPGet.Path != pr.path:
			p.addf("%s probe path %q, want %s", pr.name, pr.probe.HTTPGet.Path, pr.path)
		case pr.probe.HTTPGet.Scheme != "" && pr.probe.HTTPGet.Scheme != corev1.URISchemeHTTP:
			p.addf("%s probe scheme %s: the admin listener is plain HTTP here", pr.name, pr.probe.HTTPGet.Scheme)
		default:
			if cp, ok := containerPort(c, pr.probe.HTTPGet.Port); !ok || cp.ContainerPort != adminPort {
				p.addf("%s probe port %s is not the admin listener (%d)", pr.name, pr.probe.HTTPGet.Port.String(), adminPort)
			}
		}
	}
	// /readyz asks Redis, which may take store.timeout to fail.
	if r := c.ReadinessProbe; r != nil && time.Duration(r.TimeoutSeconds)*time.Second <= cfg.Store.Timeout.D() {
		p.addf("readiness probe timeoutSeconds must exceed store.timeout (%s)", cfg.Store.Timeout.D())
	}
	// The pod must outlive the preStop pause plus the graceful drain.
	need := cfg.Server.ShutdownTimeout.D()
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		need += time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= need {
		p.addf("terminationGracePeriodSeconds must exceed preStop + server.shutdown_timeout (%s)", need)
	}
	return p
}

func TestGatewayDeployment(t *testing.T) {
	a := loadAll(t)
	cfg := parsedConfig(t, a)
	report(t, "Deployment mcpgate", checkGateway(a.deploy, cfg, a.sa))
}

// TestGatewayChecksCatch proves the checks above fail on a weakened copy.
func TestGatewayChecksCatch(t *testing.T) {
	a := loadAll(t)
	cfg := parsedConfig(t, a)
	if p := checkGateway(a.deploy, cfg, a.sa); len(p) != 0 {
		t.Fatalf("the shipped Deployment fails: %v", p)
	}
	ptr := func(b bool) *bool { return &b }
	for _, tc := range []struct {
		name    string
		mutate  func(*corev1.PodSpec, *corev1.Container, *appsv1.Deployment)
		wantErr string
	}{
		{"one replica", func(_ *corev1.PodSpec, _ *corev1.Container, d *appsv1.Deployment) { d.Spec.Replicas = new(int32(1)) }, "replicas"},
		{"maxUnavailable 1", func(_ *corev1.PodSpec, _ *corev1.Container, d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(1))
		}, "maxUnavailable"},
		{"root", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) {
			s.SecurityContext.RunAsNonRoot = ptr(false)
		}, "runAsNonRoot"},
		{"container root", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.RunAsUser = new(int64(0))
		}, "runs as root"},
		{"writable root fs", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.ReadOnlyRootFilesystem = nil
		}, "readOnlyRootFilesystem"},
		{"privilege escalation", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.AllowPrivilegeEscalation = ptr(true)
		}, "allowPrivilegeEscalation"},
		{"privileged", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.Privileged = ptr(true)
		}, "privileged"},
		{"capability added", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.Capabilities.Add = []corev1.Capability{"NET_RAW"}
		}, "adds capabilities"},
		{"ALL not dropped", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}, "drop ALL"},
		{"seccomp unconfined", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}, "seccompProfile"},
		{"host network", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) { s.HostNetwork = true }, "hostNetwork"},
		{"host PID", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) { s.HostPID = true }, "hostNetwork"},
		{"token mounted", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) {
			s.AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken"},
		{"secret in env", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: redisSecret}, Key: redisSecretKey}}})
		}, "env P from a Secret"},
		{"secret world-readable", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) {
			projected(t, s).DefaultMode = new(int32(0o644))
		}, "mode 0644"},
		{"secret default mode", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) {
			projected(t, s).DefaultMode = nil
		}, "mode 0644"},
		{"no memory limit", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			delete(c.Resources.Limits, corev1.ResourceMemory)
		}, "no memory limit"},
		{"liveness on /readyz", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.LivenessProbe.HTTPGet.Path = "/readyz"
		}, "liveness probe path"},
		{"readiness on the https port", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.ReadinessProbe.HTTPGet.Port = intstr.FromString("https")
		}, "readiness probe port"},
		{"readiness timeout too short", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			c.ReadinessProbe.TimeoutSeconds = 1
		}, "store.timeout"},
		{"no startup probe", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) { c.StartupProbe = nil }, "startup probe"},
		{"admin port differs", func(_ *corev1.PodSpec, c *corev1.Container, _ *appsv1.Deployment) {
			for i := range c.Ports {
				if c.Ports[i].Name == "admin" {
					c.Ports[i].ContainerPort++
				}
			}
		}, "container port admin"},
		{"short grace period", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) {
			s.TerminationGracePeriodSeconds = new(int64(30))
		}, "terminationGracePeriodSeconds"},
		{"no anti-affinity", func(s *corev1.PodSpec, _ *corev1.Container, _ *appsv1.Deployment) { s.Affinity = nil }, "anti-affinity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := a.deploy.DeepCopy()
			spec := &d.Spec.Template.Spec
			tc.mutate(spec, container(spec, gatewayContainer), d)
			p := checkGateway(d, cfg, a.sa)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.wantErr) }) {
				t.Errorf("problems %q do not mention %q", p, tc.wantErr)
			}
		})
	}
}

// projected returns the pod's projected volume.
func projected(t *testing.T, s *corev1.PodSpec) *corev1.ProjectedVolumeSource {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Projected != nil {
			return v.Projected
		}
	}
	t.Fatal("no projected volume")
	return nil
}

// TestGatewayConfigFiles checks that every file the configuration names
// is mounted, each secret from the Secret the README creates.
func TestGatewayConfigFiles(t *testing.T) {
	a := loadAll(t)
	cfg := parsedConfig(t, a)
	spec := &a.deploy.Spec.Template.Spec
	c := container(spec, gatewayContainer)
	files := fileSettings(cfg)
	want := map[string]string{
		"store.password_file":     "Secret mcpgate-redis key password",
		"admin.bearer_token_file": "Secret mcpgate-admin key token",
		"server.tls.cert_file":    "Secret mcpgate-tls key tls.crt",
		"server.tls.key_file":     "Secret mcpgate-tls key tls.key",
	}
	for key := range want {
		if _, ok := files[key]; !ok {
			t.Errorf("the configuration sets no %s", key)
		}
	}
	for key, p := range files {
		src, err := resolve(spec, c, p)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if w, ok := want[key]; ok && src.String() != w {
			t.Errorf("%s %s comes from %s, want %s", key, p, src, w)
		}
		if src.kind == "Secret" && src.mode&^0o440 != 0 {
			t.Errorf("%s %s: mode %04o, want 0440 or stricter", key, p, src.mode)
		}
	}
	u := cfg.Store.URL
	if !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") {
		t.Fatalf("store.url %q is not redis:// or rediss://", u)
	}
	host, port, err := net.SplitHostPort(strings.SplitN(strings.SplitN(u, "://", 2)[1], "/", 2)[0])
	if err != nil {
		t.Fatalf("store.url %q: %v", u, err)
	}
	if host != a.redisSvc.Name || len(a.redisSvc.Spec.Ports) != 1 || strconv.Itoa(int(a.redisSvc.Spec.Ports[0].Port)) != port {
		t.Errorf("store.url %q does not name Service %s and its port", u, a.redisSvc.Name)
	}
}

func TestResolve(t *testing.T) {
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
		{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"},
				Items: []corev1.KeyToPath{{Key: "k", Path: "dir/f"}}}},
		}}}},
	}}
	c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{
		{Name: "p", MountPath: "/etc/x"}, {Name: "s", MountPath: "/etc/x/s"},
	}}
	for _, tc := range []struct{ path, want string }{
		{"/etc/x/s/password", "Secret sec key password"},
		{"/etc/x/dir/f", "ConfigMap cm key k"},
		{"/etc/x/other", "error"},
		{"/etc/xs/password", "error"},
		{"/etc/x/s/../dir/f", "error"},
		{"/etc/x/s/a/b", "error"},
	} {
		got := "error"
		if s, err := resolve(spec, c, tc.path); err == nil {
			got = s.String()
		}
		if got != tc.want {
			t.Errorf("resolve(%s) = %s, want %s", tc.path, got, tc.want)
		}
	}
}

// selects reports whether sel selects pods labelled lbls. A nil or empty
// selector counts as not selecting: it would select everything.
func selects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(lbls))
}

func TestSelectorsAndPorts(t *testing.T) {
	a := loadAll(t)
	gw := a.deploy.Spec.Template.Labels
	rd := a.sts.Spec.Template.Labels
	gc := container(&a.deploy.Spec.Template.Spec, gatewayContainer)
	rc := container(&a.sts.Spec.Template.Spec, redisContainerName)
	if gc == nil || rc == nil {
		t.Fatal("a container is missing")
	}
	if !selects(a.deploy.Spec.Selector, gw) || !selects(a.sts.Spec.Selector, rd) {
		t.Error("a workload's selector does not select its own pod template")
	}
	if selects(a.deploy.Spec.Selector, rd) || selects(a.sts.Spec.Selector, gw) {
		t.Error("the mcpgate and Redis selectors overlap")
	}
	for _, s := range []struct {
		svc  *corev1.Service
		pods map[string]string
		c    *corev1.Container
	}{{a.svc, gw, gc}, {a.adminSvc, gw, gc}, {a.redisSvc, rd, rc}} {
		if s.svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s: type %s, want ClusterIP", s.svc.Name, s.svc.Spec.Type)
		}
		if !selects(&metav1.LabelSelector{MatchLabels: s.svc.Spec.Selector}, s.pods) {
			t.Errorf("Service %s selects none of its pods", s.svc.Name)
		}
		for _, p := range s.svc.Spec.Ports {
			if _, ok := containerPort(s.c, p.TargetPort); !ok {
				t.Errorf("Service %s port %s targets %s, which container %s does not declare", s.svc.Name, p.Name, p.TargetPort.String(), s.c.Name)
			}
		}
	}
	if p, ok := containerPort(gc, a.svc.Spec.Ports[0].TargetPort); !ok || p.Name != "https" {
		t.Errorf("Service %s does not target the https port", a.svc.Name)
	}
	if p, ok := containerPort(gc, a.adminSvc.Spec.Ports[0].TargetPort); !ok || p.Name != "admin" {
		t.Errorf("Service %s does not target the admin port", a.adminSvc.Name)
	}
	if a.sts.Spec.ServiceName != a.redisSvc.Name {
		t.Errorf("StatefulSet serviceName %q, want %s", a.sts.Spec.ServiceName, a.redisSvc.Name)
	}

	// The PDB covers exactly the mcpgate pods and leaves one running.
	if !selects(a.pdb.Spec.Selector, gw) || selects(a.pdb.Spec.Selector, rd) {
		t.Error("the PodDisruptionBudget must select the mcpgate pods and only them")
	}
	switch pdb := a.pdb.Spec; {
	case pdb.MinAvailable != nil && pdb.MaxUnavailable == nil:
		if pdb.MinAvailable.Type != intstr.Int || pdb.MinAvailable.IntVal < 1 {
			t.Errorf("minAvailable %s, want at least 1", pdb.MinAvailable.String())
		}
	case pdb.MaxUnavailable != nil && pdb.MinAvailable == nil:
		if pdb.MaxUnavailable.Type != intstr.Int || pdb.MaxUnavailable.IntVal < 1 || pdb.MaxUnavailable.IntVal >= *a.deploy.Spec.Replicas {
			t.Errorf("maxUnavailable %s, want 1 to replicas-1", pdb.MaxUnavailable.String())
		}
	default:
		t.Error("the PodDisruptionBudget must set one of minAvailable and maxUnavailable")
	}

	// mcpgate's NetworkPolicy admits its two listeners and lets it reach
	// Redis; Redis's admits mcpgate only and lets Redis reach nothing.
	np := a.netpol.Spec
	if !selects(&np.PodSelector, gw) || selects(&np.PodSelector, rd) {
		t.Error("NetworkPolicy mcpgate must select the mcpgate pods and only them")
	}
	if !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Error("NetworkPolicy mcpgate must restrict both Ingress and Egress")
	}
	admitted := map[string]bool{}
	for _, r := range np.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil {
				t.Error("NetworkPolicy mcpgate: an ingress rule admits every port")
				continue
			}
			cp, ok := containerPort(gc, *p.Port)
			if !ok {
				t.Errorf("NetworkPolicy mcpgate admits port %s, which the container does not declare", p.Port.String())
			}
			admitted[cp.Name] = true
		}
		if len(r.Ports) == 0 {
			t.Error("NetworkPolicy mcpgate: an ingress rule admits every port")
		}
	}
	if len(admitted) != 2 || !admitted["https"] || !admitted["admin"] {
		t.Errorf("NetworkPolicy mcpgate admits %v, want https and admin", admitted)
	}
	redisPort := rc.Ports[0].ContainerPort
	reachesRedis, dns := false, false
	for _, r := range np.Egress {
		for _, to := range r.To {
			if to.NamespaceSelector == nil && selects(to.PodSelector, rd) {
				for _, p := range r.Ports {
					reachesRedis = reachesRedis || p.Port != nil && p.Port.IntVal == redisPort
				}
			}
		}
		for _, p := range r.Ports {
			dns = dns || p.Port != nil && p.Port.IntVal == 53 && p.Protocol != nil && *p.Protocol == corev1.ProtocolUDP
		}
	}
	if !reachesRedis || !dns {
		t.Errorf("NetworkPolicy mcpgate: egress to Redis port %d = %v, to DNS = %v", redisPort, reachesRedis, dns)
	}
	rp := a.redisNetpol.Spec
	if !selects(&rp.PodSelector, rd) || selects(&rp.PodSelector, gw) {
		t.Error("NetworkPolicy mcpgate-redis must select the Redis pods and only them")
	}
	if !slices.Contains(rp.PolicyTypes, networkingv1.PolicyTypeEgress) || len(rp.Egress) != 0 {
		t.Error("NetworkPolicy mcpgate-redis must deny all egress")
	}
	if len(rp.Ingress) != 1 || len(rp.Ingress[0].From) == 0 {
		t.Fatal("NetworkPolicy mcpgate-redis must have one ingress rule naming its clients")
	}
	for _, from := range rp.Ingress[0].From {
		if from.IPBlock != nil || from.NamespaceSelector != nil || !selects(from.PodSelector, gw) {
			t.Error("NetworkPolicy mcpgate-redis must admit the mcpgate pods only")
		}
	}
	if ps := rp.Ingress[0].Ports; len(ps) != 1 || ps[0].Port == nil || ps[0].Port.IntVal != redisPort {
		t.Errorf("NetworkPolicy mcpgate-redis must admit port %d only", redisPort)
	}
}

// redisConf maps each directive of a redis.conf to the arguments of its
// last occurrence (later lines override earlier ones), and lists the
// included files in order.
func redisConf(text string) (map[string]string, []string) {
	conf := map[string]string{}
	var includes []string
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		d := strings.ToLower(f[0])
		if d == "include" {
			includes = append(includes, strings.Join(f[1:], " "))
			continue
		}
		conf[d] = strings.Join(f[1:], " ")
	}
	return conf, includes
}

// redisScript returns the redis container's start script.
func redisScript(c *corev1.Container) (string, error) {
	argv := slices.Concat(c.Command, c.Args)
	if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-c" {
		return "", fmt.Errorf("command %q, want [sh -c SCRIPT]", argv)
	}
	return argv[2], nil
}

// redisStart is what the start script refers to.
type redisStart struct {
	script       string
	configPath   string // the file passed to redis-server
	passwordPath string // the Secret file the password is read from
}

func parseRedisStart(c *corev1.Container) (redisStart, error) {
	script, err := redisScript(c)
	if err != nil {
		return redisStart{}, err
	}
	if strings.Contains(script, "--requirepass") || slices.Contains(c.Args, "--requirepass") {
		return redisStart{}, errors.New("the password must not be passed on the command line (--requirepass)")
	}
	cm := regexp.MustCompile(`(?m)^\s*exec redis-server (\S+)\s*$`).FindStringSubmatch(script)
	pw := regexp.MustCompile(`\$\(cat (/\S+)\)`).FindStringSubmatch(script)
	if cm == nil || pw == nil {
		return redisStart{}, fmt.Errorf("the script must read the password with $(cat FILE) and end with exec redis-server CONFIG:\n%s", script)
	}
	return redisStart{script: script, configPath: cm[1], passwordPath: pw[1]}, nil
}

// checkRedis checks the Redis StatefulSet and its configuration.
func checkRedis(sts *appsv1.StatefulSet, cms map[string]*corev1.ConfigMap, gatewayPassword fileSource) problems {
	spec := &sts.Spec.Template.Spec
	p := checkPod(spec)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		p.addf("replicas must be 1 (a single instance)")
	}
	c := container(spec, redisContainerName)
	if c == nil {
		p.addf("no container %s", redisContainerName)
		return p
	}
	st, err := parseRedisStart(c)
	if err != nil {
		p.addf("%v", err)
		return p
	}
	src, err := resolve(spec, c, st.passwordPath)
	switch {
	case err != nil:
		p.addf("password %s: %v", st.passwordPath, err)
	case src.kind != "Secret" || src.name != gatewayPassword.name || src.key != gatewayPassword.key:
		p.addf("password %s comes from %s, but mcpgate's from %s", st.passwordPath, src, gatewayPassword)
	}
	src, err = resolve(spec, c, st.configPath)
	if err != nil || src.kind != "ConfigMap" || cms[src.name] == nil {
		p.addf("redis-server %s is not a shipped ConfigMap's key (%v)", st.configPath, err)
		return p
	}
	text, ok := cms[src.name].Data[src.key]
	if !ok {
		p.addf("ConfigMap %s has no key %s", src.name, src.key)
		return p
	}
	conf, includes := redisConf(text)
	for d, want := range map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction"} {
		if conf[d] != want {
			p.addf("redis.conf %s = %q, want %q", d, conf[d], want)
		}
	}
	if conf["maxmemory"] == "" {
		p.addf("redis.conf sets no maxmemory")
	}
	if _, ok := conf["requirepass"]; ok {
		p.addf("redis.conf must not hold the password (requirepass)")
	}
	if d, err := resolve(spec, c, conf["dir"]); err != nil || d.kind != "PersistentVolumeClaim" ||
		!slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(v corev1.PersistentVolumeClaim) bool { return v.Name == d.name }) {
		p.addf("redis.conf dir %q is not on a volumeClaimTemplate (%v)", conf["dir"], err)
	}
	// The password reaches Redis through an include written at start on
	// a memory-backed volume.
	if len(includes) != 1 {
		p.addf("redis.conf must include exactly the file the script writes, not %q", includes)
	} else if inc, err := resolve(spec, c, includes[0]); err != nil || inc.kind != "EmptyDir" || inc.volume.EmptyDir.Medium != corev1.StorageMediumMemory {
		p.addf("include %s must be on an emptyDir with medium Memory (%v)", includes[0], err)
	} else if !strings.Contains(st.script, "> "+includes[0]) || !strings.Contains(st.script, "requirepass") {
		p.addf("the script must write requirepass to %s", includes[0])
	}
	for name, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if pr == nil || pr.Exec == nil || !strings.Contains(strings.Join(pr.Exec.Command, " "), "redis-cli") ||
			!strings.Contains(strings.Join(pr.Exec.Command, " "), "ping") {
			p.addf("%s probe must run redis-cli ping", name)
		}
	}
	return p
}

func TestRedisStatefulSet(t *testing.T) {
	a := loadAll(t)
	cfg := parsedConfig(t, a)
	gc := container(&a.deploy.Spec.Template.Spec, gatewayContainer)
	pw, err := resolve(&a.deploy.Spec.Template.Spec, gc, cfg.Store.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "StatefulSet mcpgate-redis", checkRedis(a.sts, map[string]*corev1.ConfigMap{a.redisCM.Name: a.redisCM}, pw))

	t.Run("checks catch", func(t *testing.T) {
		cms := func(conf string) map[string]*corev1.ConfigMap {
			cm := a.redisCM.DeepCopy()
			cm.Data["redis.conf"] = conf
			return map[string]*corev1.ConfigMap{cm.Name: cm}
		}
		orig := a.redisCM.Data["redis.conf"]
		for _, tc := range []struct {
			name    string
			mutate  func(*appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource)
			wantErr string
		}{
			{"eviction", func(*appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				return cms(orig + "maxmemory-policy allkeys-lru\n"), pw
			}, "maxmemory-policy"},
			{"no appendonly", func(*appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				return cms(strings.Replace(orig, "appendonly yes", "appendonly no", 1)), pw
			}, "appendonly"},
			{"password in the config", func(*appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				return cms(orig + "requirepass hunter2hunter2\n"), pw
			}, "must not hold the password"},
			{"data not persistent", func(s *appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				s.Spec.VolumeClaimTemplates = nil
				s.Spec.Template.Spec.Volumes = append(s.Spec.Template.Spec.Volumes,
					corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
				return cms(orig), pw
			}, "volumeClaimTemplate"},
			{"password on the command line", func(s *appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				c := &s.Spec.Template.Spec.Containers[0]
				c.Command[2] = strings.Replace(c.Command[2], "exec redis-server /etc/redis/redis.conf",
					`exec redis-server /etc/redis/redis.conf --requirepass "$pw"`, 1)
				return cms(orig), pw
			}, "--requirepass"},
			{"other secret than mcpgate's", func(*appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				other := pw
				other.name = "another-secret"
				return cms(orig), other
			}, "mcpgate's from"},
			{"include on disk", func(s *appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				for i := range s.Spec.Template.Spec.Volumes {
					if v := &s.Spec.Template.Spec.Volumes[i]; v.EmptyDir != nil {
						v.EmptyDir.Medium = corev1.StorageMediumDefault
					}
				}
				return cms(orig), pw
			}, "medium Memory"},
			{"writable root fs", func(s *appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				s.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
				return cms(orig), pw
			}, "readOnlyRootFilesystem"},
			{"probe without ping", func(s *appsv1.StatefulSet) (map[string]*corev1.ConfigMap, fileSource) {
				s.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command = []string{"true"}
				return cms(orig), pw
			}, "readiness probe"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := a.sts.DeepCopy()
				m, src := tc.mutate(s)
				p := checkRedis(s, m, src)
				if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.wantErr) }) {
					t.Errorf("problems %q do not mention %q", p, tc.wantErr)
				}
			})
		}
	})
}

// TestRedisReferenceStarts runs the StatefulSet's start script and probe
// against a real redis-server, with each volume mount mapped to a
// temporary directory: Redis starts with the Secret's password (a
// trailing newline, as a file usually has, dropped the way mcpgate drops
// it), refuses clients without it, persists and never evicts; a password
// the script cannot quote safely stops it from starting.
func TestRedisReferenceStarts(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-cli", "sh"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: run scripts/test (it installs redis-server) or 'apt-get install redis-server': %v", bin, err)
		}
	}
	a := loadAll(t)
	spec := &a.sts.Spec.Template.Spec
	c := container(spec, redisContainerName)
	st, err := parseRedisStart(c)
	if err != nil {
		t.Fatal(err)
	}

	setup := func(t *testing.T, password string) (script, probe string, port int, root string) {
		root = t.TempDir()
		// Map every mountPath to a directory under root, longest first
		// so that /etc/redis-auth is not read as /etc/redis + "-auth".
		mounts := slices.Clone(c.VolumeMounts)
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].MountPath) > len(mounts[j].MountPath) })
		var pairs []string
		for _, m := range mounts {
			dir := filepath.Join(root, m.Name)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			pairs = append(pairs, m.MountPath, dir)
		}
		rewrite := strings.NewReplacer(pairs...).Replace
		port = freePort(t)
		// Write each projected file where its mount maps it.
		cfgSrc, err := resolve(spec, c, st.configPath)
		if err != nil {
			t.Fatal(err)
		}
		conf := rewrite(a.redisCM.Data[cfgSrc.key]) + fmt.Sprintf("\n# test only\nbind 127.0.0.1\nport %d\n", port)
		if err := os.WriteFile(rewrite(st.configPath), []byte(conf), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rewrite(st.passwordPath), []byte(password), 0o440); err != nil {
			t.Fatal(err)
		}
		const probePort = "-p 6379"
		probe = strings.Join(c.ReadinessProbe.Exec.Command[2:], " ")
		if c.ReadinessProbe.Exec.Command[0] != "sh" || !strings.Contains(probe, probePort) {
			t.Fatalf("readiness probe %q: want sh -c '… %s …'", c.ReadinessProbe.Exec.Command, probePort)
		}
		probe = strings.Replace(rewrite(probe), probePort, "-p "+strconv.Itoa(port), 1)
		return rewrite(st.script), probe, port, root
	}

	t.Run("starts with the password", func(t *testing.T) {
		password := "a1B2" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-._+/="
		script, probe, port, root := setup(t, password+"\n")
		cmd := exec.Command("sh", "-c", script)
		var stderr lockedBuffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, err := exec.Command("sh", "-c", probe).CombinedOutput()
			if err == nil {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("redis exited at start (%v):\n%s", err, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the readiness probe never passed (%v, %s):\n%s", err, out, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

		// Without the password: refused.
		r := dialRESP(t, addr)
		if _, err := r.do("PING"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("PING without AUTH = %v, want NOAUTH", err)
		}
		if _, err := r.do("AUTH", "wrong-password"); err == nil {
			t.Error("AUTH with a wrong password succeeded")
		}
		// With the password as mcpgate reads it (trailing newline dropped).
		r = dialRESP(t, addr)
		if _, err := r.do("AUTH", password); err != nil {
			t.Fatalf("AUTH with the Secret's password: %v", err)
		}
		for key, want := range map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction", "requirepass": password} {
			got, err := r.do("CONFIG", "GET", key)
			if err != nil {
				t.Fatal(err)
			}
			if l, ok := got.([]any); !ok || len(l) != 2 || l[1] != want {
				t.Errorf("CONFIG GET %s = %v, want %s", key, got, want)
			}
		}
		// The files the script generates are the owner's only.
		generated := generatedFiles(t, spec, c, root)
		if len(generated) == 0 {
			t.Error("the script generated no file on its emptyDir volumes")
		}
		for _, f := range generated {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", f, fi.Mode().Perm())
			}
		}
		// noeviction: a write beyond maxmemory is refused, nothing evicted.
		if _, err := r.do("SET", "mcpgate:test:kept", "1"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.do("CONFIG", "SET", "maxmemory", "1"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.do("SET", "mcpgate:test:more", strings.Repeat("x", 1024)); err == nil || !strings.Contains(err.Error(), "OOM") {
			t.Errorf("SET over maxmemory = %v, want an OOM error", err)
		}
		if got, err := r.do("GET", "mcpgate:test:kept"); err != nil || got != "1" {
			t.Errorf("GET after the refused write = %v, %v: a key was evicted", got, err)
		}
		if fi, err := os.Stat(filepath.Join(root, "data", "appendonlydir")); err != nil || !fi.IsDir() {
			t.Errorf("no append-only directory in the data volume: %v", err)
		}
	})

	for i, bad := range []string{"", "two words", `quo"te`, "semi;colon", "$(id)", "back\\slash", "new\nline"} {
		// Named by number: t.TempDir paths take the subtest's name.
		t.Run(fmt.Sprintf("refuses bad password %d", i), func(t *testing.T) {
			script, _, _, root := setup(t, bad)
			out, err := exec.Command("sh", "-c", script).CombinedOutput()
			if err == nil {
				t.Fatalf("the script succeeded:\n%s", out)
			}
			if !strings.Contains(string(out), "must be non-empty and use only") {
				t.Errorf("output %q does not explain the refusal", out)
			}
			if generated := generatedFiles(t, spec, c, root); len(generated) != 0 {
				t.Errorf("wrote %v anyway", generated)
			}
		})
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// generatedFiles lists the files in the directories that stand for the
// container's emptyDir volumes.
func generatedFiles(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, root string) []string {
	t.Helper()
	var files []string
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.EmptyDir == nil {
				continue
			}
			entries, err := os.ReadDir(filepath.Join(root, m.Name))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				files = append(files, filepath.Join(root, m.Name, e.Name()))
			}
		}
	}
	return files
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// resp is a minimal RESP2 client for the checks above.
type resp struct {
	c net.Conn
	r *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *resp {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &resp{c: c, r: bufio.NewReader(c)}
}

// do sends a command and returns its reply: a string, nil, an int64 or
// a []any; an error reply is returned as an error.
func (r *resp) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	r.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return r.read()
}

func (r *resp) read() (any, error) {
	line, err := r.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for range n {
			v, err := r.read()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
