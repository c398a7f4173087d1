// Command pki creates, when missing, Polyshop's local certificate authority and one
// certificate per service plus the operator identity (shared/pki), for mutual TLS between
// the services. `./scripts/stack up` runs it natively (into .polyshop/tls); compose runs it
// in its pki init service (into the tls volume).
//
//	pki [-dir .polyshop/tls] [name...]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"polyshop/shared/pki"
)

func main() {
	dir := flag.String("dir", ".polyshop/tls", "directory of ca.{pem,key} and <name>.{pem,key}")
	flag.Parse()
	rep, err := pki.Ensure(*dir, flag.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
	switch {
	case rep.CACreated:
		fmt.Printf("created the CA and issued %s in %s\n", strings.Join(rep.Issued, " "), *dir)
	case len(rep.Issued) > 0:
		fmt.Printf("issued %s in %s\n", strings.Join(rep.Issued, " "), *dir)
	default:
		fmt.Printf("CA and certificates in %s present and valid: nothing to do\n", *dir)
	}
}
