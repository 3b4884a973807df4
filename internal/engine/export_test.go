package engine

// crashForTest stops the engine the way a crash would leave it on disk: the
// store holds every commit, but no index snapshot is written.
func (e *Engine) crashForTest() {
	e.closeOnce.Do(func() {
		close(e.quit)
		<-e.committerDone
		<-e.snapshotDone
		<-e.retentionDone
		e.hub.Close()
		for _, c := range e.allCollections() {
			c.stopIndexer()
		}
		e.closeErr = e.store.Close()
	})
}

// snapshotAllForTest writes a snapshot of every changed collection.
func (e *Engine) snapshotAllForTest() error {
	for _, c := range e.allCollections() {
		if err := e.snapshotIfChanged(c); err != nil {
			return err
		}
	}
	return nil
}

// waitIndexedForTest waits until every collection's graph holds every node.
func (e *Engine) waitIndexedForTest() {
	for _, c := range e.allCollections() {
		if c.desc.Index.Type != "hnsw" {
			continue
		}
		for c.linkedBelow.Load() < uint32(c.index.Len()) {
			c.notifyIndexer()
			runtimeGosched()
		}
	}
}
