package app

import (
	"context"
	"fmt"

	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/localfs"
	"github.com/sigil-attestation/sigil/storage/localjson"
	"github.com/sigil-attestation/sigil/storage/memory"
	"github.com/sigil-attestation/sigil/storage/postgres"
	"github.com/sigil-attestation/sigil/storage/redis"
)

// OpenBackend opens the key-value backend of type typ described by sb.
func OpenBackend(ctx context.Context, typ config.StorageType, sb *config.StorageBackend) (storage.Backend, error) {
	switch typ {
	case config.StorageMemory, "":
		return memory.New(), nil
	case config.StorageLocalFs:
		if sb.LocalFs == nil {
			return nil, fmt.Errorf("storage type LocalFs needs [storage_backend.backends.local_fs]")
		}
		return localfs.New(sb.LocalFs.DirPath)
	case config.StorageLocalJSON:
		if sb.LocalJSON == nil {
			return nil, fmt.Errorf("storage type LocalJson needs [storage_backend.backends.local_json]")
		}
		return localjson.New(sb.LocalJSON.FileDirPath)
	case config.StoragePostgres:
		if sb.Postgres == nil {
			return nil, fmt.Errorf("storage type Postgres needs [storage_backend.backends.postgres] or POSTGRES_URL")
		}
		// Writes of policies and reference values are announced, so that
		// other replicas drop their cached copies at once.
		be, err := postgres.New(ctx, sb.Postgres.ConnString(), postgres.Options{NotifyNamespaces: []string{
			storage.NamespaceKBS, storage.NamespaceASPolicy, storage.NamespaceReferenceValue,
		}})
		if err != nil {
			return nil, fmt.Errorf("storage type Postgres: %w", err)
		}
		return be, nil
	case config.StorageRedis:
		url := config.DefaultRedisURL
		if sb.Redis != nil && sb.Redis.URL != "" {
			url = sb.Redis.URL
		}
		be, err := redis.New(ctx, url, redis.Options{})
		if err != nil {
			return nil, fmt.Errorf("storage type Redis: %w", err)
		}
		return be, nil
	}
	return nil, fmt.Errorf("storage type %s is not available in this build of Sigil", typ)
}

// backends opens each distinct storage type once.
type backends struct {
	sb   *config.StorageBackend
	open map[config.StorageType]storage.Backend
}

// namespace opens ns on the backend of type typ. volatile asks for a
// namespace whose writes need not survive a crash (sessions), when the
// backend offers one (storage.VolatileOpener).
func (b *backends) namespace(ctx context.Context, typ config.StorageType, ns string, volatile bool) (storage.Store, error) {
	if typ == "" {
		typ = b.sb.StorageType
	}
	be, ok := b.open[typ]
	if !ok {
		var err error
		if be, err = OpenBackend(ctx, typ, b.sb); err != nil {
			return nil, err
		}
		b.open[typ] = be
	}
	if vo, ok := be.(storage.VolatileOpener); ok && volatile {
		return vo.VolatileNamespace(ctx, ns)
	}
	return be.Namespace(ctx, ns)
}

// watch runs fn for the change notifications of every opened backend that
// has them (storage.Watcher), until ctx ends.
func (b *backends) watch(ctx context.Context, fn func(namespace, key string)) {
	for _, be := range b.open {
		if w, ok := be.(storage.Watcher); ok {
			go func() { _ = w.Watch(ctx, fn) }()
		}
	}
}

// pinger is a backend that can tell whether its server answers.
type pinger interface {
	Ping(ctx context.Context) error
}

// ready pings every opened backend that has a server (PostgreSQL, Redis).
func (b *backends) ready(ctx context.Context) error {
	for typ, be := range b.open {
		if p, ok := be.(pinger); ok {
			if err := p.Ping(ctx); err != nil {
				return fmt.Errorf("%s: %w", typ, err)
			}
		}
	}
	return nil
}

func (b *backends) close() {
	for _, be := range b.open {
		_ = be.Close()
	}
}
