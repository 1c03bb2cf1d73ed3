package redirect

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Iptables installs and removes the rules by running Debian's iptables
// and iptables-restore (either backend, nft or legacy).
type Iptables struct {
	// Prefix is prepended to every command, e.g. ip netns exec NAME.
	Prefix []string
}

// Apply installs c's rules, replacing any this package installed before,
// so running it twice (an init container restarted) installs them once.
func (ipt Iptables) Apply(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := ipt.Remove(ctx); err != nil {
		return err
	}
	if _, err := ipt.run(ctx, strings.NewReader(c.Rules()), "iptables-restore", "--noflush"); err != nil {
		return fmt.Errorf("install rules: %w", err)
	}
	return nil
}

// Remove deletes the rules this package installed, if any, and checks
// that none is left.
func (ipt Iptables) Remove(ctx context.Context) error {
	for _, jump := range [][]string{
		{"PREROUTING", "-p", "tcp", "-j", chainInbound},
		{"OUTPUT", "-p", "tcp", "-j", chainOutput},
	} {
		// Delete every copy of the jump; the loop ends when none is left.
		for range 16 {
			if _, err := ipt.run(ctx, nil, "iptables", append([]string{"-t", "nat", "-D"}, jump...)...); err != nil {
				break
			}
		}
	}
	for _, ch := range chains {
		ipt.run(ctx, nil, "iptables", "-t", "nat", "-F", ch) // missing chains are fine
	}
	for _, ch := range chains {
		ipt.run(ctx, nil, "iptables", "-t", "nat", "-X", ch)
	}
	left, err := ipt.Installed(ctx)
	if err != nil {
		return err
	}
	if left != "" {
		return fmt.Errorf("remove rules: some are left:\n%s", left)
	}
	return nil
}

// Installed returns the nat table's rules that mention this package's
// chains, one per line ("" if none).
func (ipt Iptables) Installed(ctx context.Context) (string, error) {
	out, err := ipt.run(ctx, nil, "iptables", "-t", "nat", "-S")
	if err != nil {
		return "", fmt.Errorf("list rules: %w", err)
	}
	var ours []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, "WEFT_") {
			ours = append(ours, strings.TrimSpace(line))
		}
	}
	return strings.Join(ours, "\n"), nil
}

func (ipt Iptables) run(ctx context.Context, stdin *strings.Reader, name string, args ...string) (string, error) {
	argv := append(append(append([]string{}, ipt.Prefix...), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
