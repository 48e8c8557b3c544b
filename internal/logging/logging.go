// Package logging builds Sigil's slog logger from SIGIL_LOG or, for drop-in
// use with Trustee deployments, RUST_LOG.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Level parses a level name (trace, debug, info, warn, error, off). RUST_LOG
// filter syntax is accepted in its simple forms: "debug",
// "info,kbs=debug" (the most verbose level mentioned wins) and "kbs=debug".
func Level(spec string) (slog.Level, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return slog.LevelInfo, nil
	}
	best := slog.Level(100)
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, lvl, ok := strings.Cut(part, "="); ok {
			part = lvl
		}
		var l slog.Level
		switch strings.ToLower(part) {
		case "trace", "debug":
			l = slog.LevelDebug
		case "info":
			l = slog.LevelInfo
		case "warn", "warning":
			l = slog.LevelWarn
		case "error":
			l = slog.LevelError
		case "off":
			l = slog.Level(100)
		default:
			return 0, fmt.Errorf("invalid log level %q", part)
		}
		best = min(best, l)
	}
	return best, nil
}

// New returns a text logger writing to w at the level from getenv
// (SIGIL_LOG first, then RUST_LOG; default info).
func New(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	spec := getenv("SIGIL_LOG")
	if spec == "" {
		spec = getenv("RUST_LOG")
	}
	lvl, err := Level(spec)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}
