// Command natsconf writes infra/nats/nats.conf from infra/checks/internal/natsperm (the users,
// their durable consumers by exact name, and the streams they read with generated-name
// consumers). Run it from infra/checks after changing the table:
//
//	go run ./cmd/natsconf            writes ../nats/nats.conf
//	go run ./cmd/natsconf -          prints it
//
// then apply it to a running native NATS with ./scripts/stack provision nats (a reload:
// connections stay).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"polyshop/infra/checks/internal/natsperm"
	"polyshop/shared/testenv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "natsconf:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	conf := natsperm.Render()
	if len(args) == 1 && args[0] == "-" {
		_, err := os.Stdout.WriteString(conf)
		return err
	}
	if len(args) != 0 {
		return fmt.Errorf("usage: natsconf [-]")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	path := filepath.Join(root, "infra", "nats", "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}
