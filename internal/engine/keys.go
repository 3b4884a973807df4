package engine

import (
	"errors"

	"github.com/hippo-db/hippo/internal/store"
)

// KeyStore returns the store of API keys, which lives beside the data but
// outside the change log. Writes through it go straight to the store; they
// are not engine mutations and have no seq.
func (e *Engine) KeyStore() (store.KeyStore, error) {
	ks, ok := e.store.(store.KeyStore)
	if !ok {
		return nil, errors.New("hippo: this store does not keep API keys")
	}
	return ks, nil
}
