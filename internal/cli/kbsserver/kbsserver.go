// Package kbsserver implements `sigil kbs` (also `kbs` when the binary is
// invoked under that name): the all-in-one KBS.
package kbsserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/internal/app"
	"github.com/sigil-attestation/sigil/internal/logging"
)

const help = `Usage: sigil kbs [flags]

Runs the Key Broker Service with the built-in Attestation Service and RVPS.

With --config-file, the KBS is configured by a Trustee KBS config file
(TOML, or JSON by extension), unchanged. Without it, Sigil starts with secure
defaults and embedded storage under --data-dir, creating on first start an
admin key pair and token, an EAR signing key with its CA, and (unless
--insecure-http) a self-signed TLS certificate.

Flags:
  -c, --config-file FILE   Trustee KBS config file (env KBS_CONFIG_FILE)
  --data-dir DIR           data directory for the zero-config start (env SIGIL_DATA_DIR; default ./sigil-data)
  --listen ADDR            listen address for the zero-config start (default 127.0.0.1:8080)
  --insecure-http          serve plain HTTP in the zero-config start

Logging: SIGIL_LOG or RUST_LOG (error, warn, info, debug).
Profiling: SIGIL_PPROF=127.0.0.1:6060 serves Go's pprof handlers on that
loopback address (refused for non-loopback addresses).
`

// Main runs the KBS until ctx ends.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, version string) int {
	fs := flag.NewFlagSet("kbs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfgFile string
	fs.StringVar(&cfgFile, "config-file", getenv("KBS_CONFIG_FILE"), "")
	fs.StringVar(&cfgFile, "c", getenv("KBS_CONFIG_FILE"), "")
	dataDir := fs.String("data-dir", firstNonEmpty(getenv("SIGIL_DATA_DIR"), "sigil-data"), "")
	listen := fs.String("listen", "127.0.0.1:8080", "")
	insecure := fs.Bool("insecure-http", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, help)
			return 0
		}
		fmt.Fprintf(stderr, "sigil kbs: %v\n\n%s", err, help)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sigil kbs: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := logging.New(stderr, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sigil kbs: %v\n", err)
		return 2
	}

	var boot *app.Bootstrap
	if cfgFile == "" {
		boot, err = app.RunBootstrap(app.BootstrapOptions{DataDir: *dataDir, Listen: *listen, InsecureHTTP: *insecure})
		if err != nil {
			log.Error("zero-config start failed", "error", err)
			return 1
		}
		cfgFile = boot.ConfigPath
	}
	cfg, warnings, err := config.Load(cfgFile, getenv)
	if err != nil {
		log.Error("invalid configuration", "file", cfgFile, "error", err)
		return 1
	}
	for _, w := range warnings {
		log.Warn("configuration", "file", cfgFile, "key", w.Key, "warning", w.Message)
	}
	if addr := getenv("SIGIL_PPROF"); addr != "" {
		if err := startPprof(ctx, addr, log); err != nil {
			log.Error("SIGIL_PPROF", "error", err)
			return 1
		}
	}
	k, err := app.NewKBS(ctx, cfg, app.Options{Logger: log, Version: version})
	if err != nil {
		log.Error("starting the KBS failed", "error", err)
		return 1
	}
	defer k.Close()
	log.Info("sigil KBS starting", "version", version, "config", cfgFile)
	err = k.Serve(ctx, func(addrs []net.Addr) {
		scheme := "https"
		if cfg.HTTPServer.InsecureHTTP {
			scheme = "http"
		}
		for _, a := range addrs {
			log.Info("listening", "url", scheme+"://"+a.String())
		}
		if boot != nil {
			printNextSteps(stdout, boot, scheme+"://"+addrs[0].String())
		}
	})
	if err != nil {
		log.Error("server failed", "error", err)
		return 1
	}
	log.Info("sigil KBS stopped")
	return 0
}

func printNextSteps(w io.Writer, b *app.Bootstrap, url string) {
	certFlag := ""
	if b.TLSCertPath != "" {
		certFlag = " --cert-file " + b.TLSCertPath
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nSigil KBS is ready at %s\n", url)
	fmt.Fprintf(&sb, "  data directory: %s\n  config:         %s\n  admin token:    %s\n", b.DataDir, b.ConfigPath, b.AdminTokenPath)
	if b.TLSCertPath != "" {
		fmt.Fprintf(&sb, "  TLS cert:       %s\n", b.TLSCertPath)
	}
	for _, c := range b.Created {
		fmt.Fprintf(&sb, "  created:        %s\n", c)
	}
	fmt.Fprintf(&sb, "\nStore a secret (admin):\n  sigil client --url %s%s config --admin-token-file %s set-resource --path default/test/secret --resource-file SECRET_FILE\n",
		url, certFlag, b.AdminTokenPath)
	fmt.Fprintf(&sb, "Fetch it as a guest:\n  sigil client --url %s%s get-resource --path default/test/secret\n", url, certFlag)
	fmt.Fprintf(&sb, "Guests find this KBS with the kernel parameter agent.aa_kbc_params=cc_kbc::%s\n\n", url)
	fmt.Fprint(w, sb.String())
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}
