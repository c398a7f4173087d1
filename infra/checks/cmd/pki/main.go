// Command pki creates, when missing, Polyshop's local certificate authority and one
// certificate per service plus the operator identity (shared/pki), for mutual TLS between
// the services. `./scripts/stack up` runs it natively (into .polyshop/tls); compose runs it
// in its pki init service with -split.
//
//	pki [-dir .polyshop/tls] [-split] [name...]
//
// -split keeps the CA and every certificate in <dir>/ca and copies, for each identity,
// only its own certificate and key and the CA certificate into <dir>/<name>/, so that a
// container mounting <dir>/<name> (compose: a volume subpath) holds no other identity's key
// and not the CA's key.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"polyshop/shared/pki"
)

func main() {
	dir := flag.String("dir", ".polyshop/tls", "directory of ca.{pem,key} and <name>.{pem,key}")
	split := flag.Bool("split", false, "CA in <dir>/ca; each identity's own files in <dir>/<name>/")
	flag.Parse()
	if err := run(*dir, *split, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
}

func run(dir string, split bool, names []string) error {
	if len(names) == 0 {
		names = pki.Identities
	}
	caDir := dir
	if split {
		caDir = filepath.Join(dir, "ca")
	}
	rep, err := pki.Ensure(caDir, names...)
	if err != nil {
		return err
	}
	switch {
	case rep.CACreated:
		fmt.Printf("created the CA and issued %s in %s\n", strings.Join(rep.Issued, " "), caDir)
	case len(rep.Issued) > 0:
		fmt.Printf("issued %s in %s\n", strings.Join(rep.Issued, " "), caDir)
	default:
		fmt.Printf("CA and certificates in %s present and valid: nothing to do\n", caDir)
	}
	if !split {
		return nil
	}
	if err := os.Chmod(caDir, 0o700); err != nil { // the CA's key and every identity's
		return err
	}
	for _, name := range names {
		own := filepath.Join(dir, name)
		if err := os.MkdirAll(own, 0o755); err != nil {
			return err
		}
		for file, mode := range map[string]os.FileMode{"ca.pem": 0o644, name + ".pem": 0o644, name + ".key": 0o600} {
			b, err := os.ReadFile(filepath.Join(caDir, file))
			if err != nil {
				return err
			}
			tmp := filepath.Join(own, file+".tmp")
			if err := os.WriteFile(tmp, b, mode); err != nil {
				return err
			}
			if err := os.Chmod(tmp, mode); err != nil {
				return err
			}
			if err := os.Rename(tmp, filepath.Join(own, file)); err != nil {
				return err
			}
		}
	}
	fmt.Printf("copied each identity's own certificate, key and the CA certificate into %s/<name>/\n", dir)
	return nil
}
