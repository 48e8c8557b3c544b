package memory_test

import (
	"testing"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/memory"
	"github.com/sigil-attestation/sigil/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Backend { return memory.New() })
}

func TestEmptyNamespaceRejected(t *testing.T) {
	if _, err := memory.New().Namespace(t.Context(), ""); err == nil {
		t.Fatal("empty namespace accepted")
	}
}

func BenchmarkMemory(b *testing.B) {
	storagetest.RunBenchmarks(b, func(*testing.B) storage.Backend { return memory.New() })
}
