// Command sigil is Sigil's single binary: the all-in-one KBS with built-in
// Attestation Service and RVPS (`sigil kbs`), the kbs-client compatible
// client (`sigil client`), and the offline evaluator (`sigil evaluate`).
//
// Invoked under the name `kbs` it behaves as `sigil kbs`, and under the name
// `kbs-client` as `sigil client`, so Trustee command lines carry over.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sigil-attestation/sigil/internal/cli/evaluate"
	"github.com/sigil-attestation/sigil/internal/cli/kbsclient"
	"github.com/sigil-attestation/sigil/internal/cli/kbsserver"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `sigil — remote-attestation verifier and key broker for Confidential Containers

Usage:
  sigil kbs [--config-file FILE] [--data-dir DIR] [--listen ADDR] [--insecure-http]
                                  run the KBS with the built-in Attestation Service and RVPS
  sigil client [--url URL] ...    kbs-client compatible client (attest, get-resource, config ...)
  sigil evaluate --tee TEE --evidence FILE ...
                                  verify evidence and run the policy offline, print JSON
  sigil version                   print the version

Run "sigil <command> --help" for the flags of a command.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	name := strings.TrimSuffix(filepath.Base(args[0]), ".exe")
	switch name {
	case "kbs":
		return kbsserver.Main(ctx, args[1:], stdout, stderr, getenv, version)
	case "kbs-client":
		return kbsclient.Main(ctx, args[1:], stdin, stdout, stderr, getenv)
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[1] {
	case "kbs":
		return kbsserver.Main(ctx, args[2:], stdout, stderr, getenv, version)
	case "client", "kbs-client":
		return kbsclient.Main(ctx, args[2:], stdin, stdout, stderr, getenv)
	case "evaluate":
		return evaluate.Main(ctx, args[2:], stdout, stderr, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "sigil", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sigil: unknown command %q\n\n%s", args[1], usage)
	return 2
}
