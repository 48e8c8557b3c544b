package pcs

import (
	"context"
	"sync"
	"time"
)

// cacheEntry is one verified collateral document.
type cacheEntry struct {
	val any
	// expires is when the entry must be refetched (nextUpdate, or earlier
	// when Options.MaxCacheAge is set).
	expires time.Time
	// retryAfter suppresses refetching after a failed refresh, so that a
	// down PCS is not hammered while stale collateral is served.
	retryAfter time.Time
	// lastErr is the error of the last failed refresh, if any.
	lastErr error
}

// flight is one in-progress fetch that concurrent callers share.
type flight struct {
	done chan struct{}
	ent  *cacheEntry
	err  error
}

// collateralCache is an in-memory cache keyed by collateral identity with
// request coalescing: concurrent misses for one key run a single fetch.
type collateralCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	flights map[string]*flight
}

func newCache() *collateralCache {
	return &collateralCache{entries: map[string]*cacheEntry{}, flights: map[string]*flight{}}
}

// lookupResult says how a value was obtained.
type lookupResult struct {
	ent *cacheEntry
	// stale is set when the entry is past its refresh time and the refresh
	// failed (or is being suppressed after a recent failure).
	stale bool
	// fetchErr is the refresh error that caused stale data to be served.
	fetchErr error
}

// get returns the entry for key, fetching it with fetch when it is missing
// or due. fetch runs detached from the caller's cancellation (other callers
// may be waiting on it) but bounded by timeout. When the fetch fails and an
// older entry exists, that entry is returned with stale set; retry delays
// the next attempt.
func (c *collateralCache) get(ctx context.Context, key string, now time.Time, timeout, retry time.Duration,
	fetch func(context.Context) (*cacheEntry, error)) (lookupResult, error) {
	c.mu.Lock()
	old := c.entries[key]
	if old != nil {
		if now.Before(old.expires) {
			c.mu.Unlock()
			return lookupResult{ent: old}, nil
		}
		if now.Before(old.retryAfter) {
			c.mu.Unlock()
			return lookupResult{ent: old, stale: true, fetchErr: old.lastErr}, nil
		}
	}
	f := c.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(context.WithoutCancel(ctx), key, f, now, timeout, retry, fetch)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return lookupResult{}, ctx.Err()
	}
	if f.err != nil {
		c.mu.Lock()
		cur := c.entries[key]
		c.mu.Unlock()
		if cur != nil {
			return lookupResult{ent: cur, stale: true, fetchErr: f.err}, nil
		}
		return lookupResult{}, f.err
	}
	return lookupResult{ent: f.ent}, nil
}

func (c *collateralCache) run(ctx context.Context, key string, f *flight, now time.Time, timeout, retry time.Duration,
	fetch func(context.Context) (*cacheEntry, error)) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ent, err := fetch(ctx)

	c.mu.Lock()
	if err == nil {
		c.entries[key] = ent
	} else if old := c.entries[key]; old != nil {
		// Keep serving the old value; remember the failure.
		upd := *old
		upd.retryAfter = now.Add(retry)
		upd.lastErr = err
		c.entries[key] = &upd
	}
	delete(c.flights, key)
	f.ent, f.err = ent, err
	c.mu.Unlock()
	close(f.done)
}

// purge drops every entry (used by Client.Purge).
func (c *collateralCache) purge() {
	c.mu.Lock()
	c.entries = map[string]*cacheEntry{}
	c.mu.Unlock()
}
