package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLevel(t *testing.T) {
	cases := []struct {
		spec string
		want slog.Level
		ok   bool
	}{
		{"", slog.LevelInfo, true},
		{"debug", slog.LevelDebug, true},
		{"TRACE", slog.LevelDebug, true},
		{"warn", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"info,kbs=debug", slog.LevelDebug, true},
		{"kbs=warn", slog.LevelWarn, true},
		{"off", slog.Level(100), true},
		{"loud", 0, false},
		{"kbs=loud", 0, false},
	}
	for _, c := range cases {
		got, err := Level(c.spec)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%q: %v %v", c.spec, got, err)
		}
	}
}

func TestNewPrefersSigilLog(t *testing.T) {
	var buf bytes.Buffer
	env := map[string]string{"SIGIL_LOG": "debug", "RUST_LOG": "error"}
	l, err := New(&buf, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hello")
	if !strings.Contains(buf.String(), "hello") {
		t.Fatal("SIGIL_LOG=debug not honoured")
	}
	if _, err := New(&buf, func(k string) string { return map[string]string{"RUST_LOG": "nope"}[k] }); err == nil {
		t.Fatal("invalid RUST_LOG accepted")
	}
}
