package fifo

import (
	"sync"
	"testing"
)

func TestCache(t *testing.T) {
	c := New[int, string](2)
	c.Put(1, "a")
	c.Put(2, "b")
	c.Put(1, "a2") // replaces, no eviction
	if v, ok := c.Get(1); !ok || v != "a2" || c.Len() != 2 {
		t.Fatalf("replace: %q %v %d", v, ok, c.Len())
	}
	c.Put(3, "c") // evicts the oldest key (1)
	if _, ok := c.Get(1); ok {
		t.Fatal("oldest entry not evicted")
	}
	if v, ok := c.Get(3); !ok || v != "c" || c.Len() != 2 {
		t.Fatalf("after eviction: %q %v %d", v, ok, c.Len())
	}
	var disabled *Cache[int, string] = New[int, string](0)
	disabled.Put(1, "x")
	if _, ok := disabled.Get(1); ok || disabled.Len() != 0 {
		t.Fatal("a disabled cache stored a value")
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int, int](8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				c.Put(g*1000+i, i)
				c.Get(i)
			}
		}()
	}
	wg.Wait()
	if c.Len() != 8 {
		t.Fatalf("len %d", c.Len())
	}
}
