// Package checks holds the platform-level checks of Polyshop: that docker-compose.yml wires
// every service and engine of SPEC with per-service credentials, and (isolation_test.go) that
// on the running native stack each service's credentials reach its own store and nothing else.
package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"

	"polyshop/shared/testenv"
)

var (
	appServices = []string{"activity", "catalog", "gateway", "inventory", "orders", "payments", "search", "sessions", "users"}
	engines     = map[string]string{ // compose service → image repository
		"postgres": "postgres", "redis": "redis", "mongo": "mongo",
		"cassandra": "cassandra", "elasticsearch": "elasticsearch", "nats": "nats",
	}
	// ownStore says which engine holds each service's data (SPEC's ownership table).
	ownStore = map[string]string{
		"users": "postgres", "inventory": "postgres", "orders": "postgres", "payments": "postgres",
		"sessions": "redis", "catalog": "mongo", "activity": "cassandra-init", "search": "elasticsearch-init",
	}
	// credentialKey matches the environment variables that carry a datastore or broker credential.
	credentialKey = regexp.MustCompile(`^([A-Z]+)_(DATABASE_URL|REDIS_URL|MONGODB_URI|CASSANDRA_\w+|ELASTICSEARCH_\w+|NATS_URL)$`)
	// tlsKey matches a service's mutual-TLS settings (its certificate, key and the CA).
	tlsKey = regexp.MustCompile(`^[A-Z]+_TLS_(CERT|KEY|CA)$`)
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("polyshop"), cli.WithOsEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

func TestComposeHasEveryServiceAndEngine(t *testing.T) {
	p := loadCompose(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, want := range appServices {
		if !slices.Contains(names, want) {
			t.Errorf("service %s missing from docker-compose.yml", want)
		}
	}
	for svc, repo := range engines {
		s, ok := p.Services[svc]
		if !ok {
			t.Errorf("engine %s missing from docker-compose.yml", svc)
			continue
		}
		image, tag, _ := strings.Cut(s.Image, ":")
		if image != repo {
			t.Errorf("%s image = %q, want the official %s image", svc, s.Image, repo)
		}
		if tag == "" || tag == "latest" || !regexp.MustCompile(`^\d+\.\d+`).MatchString(tag) {
			t.Errorf("%s image %q is not pinned to a version", svc, s.Image)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", svc)
		}
	}
}

func TestComposeServicesWaitForTheirStores(t *testing.T) {
	p := loadCompose(t)
	for _, name := range appServices {
		s := p.Services[name]
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		if s.Build == nil || s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != name {
			t.Errorf("%s is not built from its own sources (build arg SERVICE)", name)
		}
		want := []string{"nats"}
		if store, ok := ownStore[name]; ok {
			want = append(want, store)
		}
		for _, dep := range want {
			d, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("%s does not depend on %s", name, dep)
				continue
			}
			if d.Condition != types.ServiceConditionHealthy && d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s depends on %s with condition %q, want healthy or completed", name, dep, d.Condition)
			}
		}
	}
}

// TestComposeCredentialsAreOwnedByOneService checks that each service receives only its own
// credentials: every credential variable it gets is named after it, carries its own user, and
// no other service's password appears anywhere in its environment.
func TestComposeCredentialsAreOwnedByOneService(t *testing.T) {
	p := loadCompose(t)
	passwords := map[string]string{} // password value → owning service
	for _, name := range appServices {
		for key, val := range p.Services[name].Environment {
			if val == nil || !credentialKey.MatchString(key) {
				continue
			}
			if pw := passwordOf(*val); pw != "" {
				passwords[pw] = name
			}
		}
	}
	for _, name := range appServices {
		env := p.Services[name].Environment
		if _, ok := env[strings.ToUpper(name)+"_NATS_URL"]; !ok {
			t.Errorf("%s has no %s_NATS_URL", name, strings.ToUpper(name))
		}
		for key, val := range env {
			if val == nil {
				continue
			}
			if m := credentialKey.FindStringSubmatch(key); m != nil && m[1] != strings.ToUpper(name) {
				t.Errorf("%s is handed %s, a credential of another service", name, key)
			}
			for pw, owner := range passwords {
				if owner != name && strings.Contains(*val, pw) {
					t.Errorf("%s's %s contains %s's password", name, key, owner)
				}
			}
			if u := userOf(*val); u != "" && key != "ADMIN_EMAIL" && u != name {
				t.Errorf("%s's %s logs in as %q, want %q", name, key, u, name)
			}
		}
	}
}

func TestComposeOnlyTheGatewayIsPublic(t *testing.T) {
	p := loadCompose(t)
	var public []string
	for name, s := range p.Services {
		if len(s.Ports) > 0 {
			public = append(public, name)
		}
	}
	if diff := cmp.Diff(public, []string{"gateway"}); diff != "" {
		t.Errorf("services publishing ports (-got +want):\n%s", diff)
	}
}

// TestComposeUsesTheNativeVariableNames keeps docker-compose.yml and infra/local.env in step:
// every variable a service reads in compose is defined for the native stack too.
func TestComposeUsesTheNativeVariableNames(t *testing.T) {
	p := loadCompose(t)
	for _, name := range appServices {
		for key := range p.Services[name].Environment {
			if tlsKey.MatchString(key) {
				continue // natively generated by service_env from POLYSHOP_TLS (TestComposeServicesUseMutualTLS)
			}
			if testenv.Getenv(key) == "" {
				t.Errorf("%s reads %s in compose, but infra/local.env does not define it", name, key)
			}
		}
	}
}

// passwordOf returns the password in a URL's user info, or the value itself for *_PASSWORD.
func passwordOf(v string) string {
	if m := regexp.MustCompile(`^\w+://[^:/@]+:([^@]+)@`).FindStringSubmatch(v); m != nil {
		return m[1]
	}
	if strings.HasPrefix(v, "lab-") {
		return v
	}
	return ""
}

// userOf returns the user name in a URL's user info, if any.
func userOf(v string) string {
	if m := regexp.MustCompile(`^\w+://([^:/@]+):[^@]*@`).FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// TestComposeServicesUseMutualTLS: every service gets its own certificate from the pki init
// service (only its own subdirectory of the tls volume, read-only: no other key, not the
// CA's), calls its peers over https://, and the internal services' health checks use HTTPS
// while the gateway's public port stays plain HTTP.
func TestComposeServicesUseMutualTLS(t *testing.T) {
	p := loadCompose(t)
	pki, ok := p.Services["pki"]
	if !ok || !slices.Contains(pki.Command, "-split") {
		t.Fatalf("no pki service running the pki program with -split (command %v)", pki.Command)
	}
	for name, s := range p.Services {
		isApp := slices.Contains(appServices, name)
		var mounts []string
		for _, v := range s.Volumes {
			if v.Source == "tls" {
				sub := ""
				if v.Volume != nil {
					sub = v.Volume.Subpath
				}
				mounts = append(mounts, fmt.Sprintf("%s:%s ro=%v", sub, v.Target, v.ReadOnly))
			}
		}
		var want []string
		switch {
		case name == "pki":
			want = []string{":/tls ro=false"}
		case isApp:
			want = []string{name + ":/tls ro=true"}
		}
		if diff := cmp.Diff(want, mounts); diff != "" {
			t.Errorf("%s mounts of the tls volume (-want +got):\n%s", name, diff)
		}
		if !isApp {
			continue
		}
		if d, ok := s.DependsOn["pki"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for pki to complete successfully", name)
		}
		own := strings.ToUpper(name)
		for suffix, want := range map[string]string{"CERT": "/tls/" + name + ".pem", "KEY": "/tls/" + name + ".key", "CA": "/tls/ca.pem"} {
			if v := s.Environment[own+"_TLS_"+suffix]; v == nil || *v != want {
				t.Errorf("%s: %s_TLS_%s = %v, want %s", name, own, suffix, v, want)
			}
		}
		for key, v := range s.Environment {
			peer, isURL := strings.CutSuffix(key, "_URL")
			if !isURL || v == nil || !slices.Contains(appServices, strings.ToLower(peer)) {
				continue
			}
			if !strings.HasPrefix(*v, "https://") {
				t.Errorf("%s calls %s at %s, want https://", name, strings.ToLower(peer), *v)
			}
		}
		wantScheme := "https://"
		if name == "gateway" {
			wantScheme = "http://" // the public entry
		}
		if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), wantScheme+"127.0.0.1:8080/readyz") {
			t.Errorf("%s health check %v, want %s127.0.0.1:8080/readyz", name, s.HealthCheck, wantScheme)
		}
	}
}
