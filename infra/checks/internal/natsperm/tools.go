package natsperm

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ToolsOption returns the connect option that logs in as the tools user with seed (the
// value of TOOLS_NATS_SEED), or an error when seed is not the tools user's.
func ToolsOption(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("tools seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("tools seed: %w", err)
	}
	if pub != ToolsNKey {
		return nil, fmt.Errorf("tools seed is for %s, want the tools user %s (infra/checks/internal/natsperm)", pub, ToolsNKey)
	}
	return nats.Nkey(pub, kp.Sign), nil
}
