package httpapi

import (
	"net/http"
	"time"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/store"
)

type wireCollectionSpec struct {
	Dimension int             `json:"dimension"`
	Metric    string          `json:"metric"`
	Index     store.IndexSpec `json:"index"`
}

type wireCollection struct {
	Name      string          `json:"name"`
	Dimension int             `json:"dimension"`
	Metric    string          `json:"metric"`
	Index     store.IndexSpec `json:"index"`
	Count     int             `json:"count"`
	CreatedAt time.Time       `json:"created_at"`
	Stats     engine.Stats    `json:"stats"`
	Seq       *uint64         `json:"seq,omitempty"`
}

func toWireCollection(info engine.Info) wireCollection {
	return wireCollection{
		Name: info.Name, Dimension: info.Dimension, Metric: info.Metric, Index: info.Index,
		Count: info.Count, CreatedAt: info.CreatedAt, Stats: info.Stats,
	}
}

func (a *API) createCollection(w http.ResponseWriter, r *http.Request) {
	var spec wireCollectionSpec
	if err := decodeBody(w, r, MaxRecordBodyBytes, &spec); err != nil {
		a.writeError(w, r, err)
		return
	}
	info, created, seq, err := a.engine.CreateCollection(r.Context(), r.PathValue("collection"),
		engine.CollectionSpec{Dimension: spec.Dimension, Metric: spec.Metric, Index: spec.Index})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := toWireCollection(info)
	out.Seq = &seq
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

func (a *API) getCollection(w http.ResponseWriter, r *http.Request) {
	info, err := a.engine.Collection(r.PathValue("collection"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWireCollection(info))
}

func (a *API) listCollections(w http.ResponseWriter, r *http.Request) {
	infos := a.engine.Collections()
	out := make([]wireCollection, 0, len(infos))
	for _, info := range infos {
		if visible(r.Context(), info.Name) { // a key sees its collections only
			out = append(out, toWireCollection(info))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"collections": out})
}

func (a *API) deleteCollection(w http.ResponseWriter, r *http.Request) {
	seq, err := a.engine.DeleteCollection(r.Context(), r.PathValue("collection"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq})
}
