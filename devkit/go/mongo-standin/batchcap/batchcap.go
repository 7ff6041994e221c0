// Package batchcap makes FerretDB v1 send at most 16 MiB of documents in one reply batch, as MongoDB
// does. FerretDB fills a find's or a getMore's batch by count alone (FerretDB v1.24.2's
// internal/handler/msg_find.go and msg_getmore.go take batchSize documents with ConsumeValuesN;
// FerretDB#2824), so a client asking for 101 documents of 1 MB gets 101 MB in one reply, where MongoDB
// sends 16: its FindCommon::haveSpaceForNext (mongodb/mongo src/mongo/db/query/find_common.cpp)
// admits the next document while the batch stays within 16 MiB, and always the first one.
//
// What this does, in front of FerretDB's own handlers: a find or aggregate reply over the cap keeps
// what fits and holds the rest here under the reply's cursor id (a new id when FerretDB had already
// closed its cursor); a getMore of that id is answered from what is held first, by the same rule,
// and passed on to FerretDB once nothing is held; killCursors forgets what is held. Held documents
// of a cursor nobody asks for are dropped after 10 minutes, MongoDB's cursor timeout.
package batchcap

import (
	"context"
	"sync"
	"time"

	"github.com/FerretDB/wire"
	"github.com/FerretDB/wire/wirebson"

	"github.com/FerretDB/FerretDB/internal/handler"
)

// MaxBytes is MongoDB's BSONObjMaxUserSize, which find_common.h names kMaxBytesToReturnToClientAtOnce.
const MaxBytes = 16 * 1024 * 1024

const idleTimeout = 10 * time.Minute

type held struct {
	docs []wirebson.RawDocument
	ns   string
	// FerretDB's cursor of this id is still open: once nothing is held, getMore goes to FerretDB.
	upstream bool
	touched  time.Time
}

type capper struct {
	mu     sync.Mutex
	held   map[int64]*held
	nextID int64
}

// Apply wraps h's find, aggregate, getMore and killCursors.
func Apply(h *handler.Handler) {
	c := &capper{held: map[int64]*held{}, nextID: 1 << 62}
	commands := h.Commands()
	wrap := func(name string, with func(next handlerFunc) handlerFunc) {
		if cmd := commands[name]; cmd != nil && cmd.Handler != nil {
			cmd.Handler = with(cmd.Handler)
		}
	}
	wrap("find", c.first)
	wrap("aggregate", c.first)
	wrap("getMore", c.getMore)
	wrap("killCursors", c.killCursors)
}

type handlerFunc = func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error)

// split keeps the documents that fit in one batch and returns the rest.
func split(docs []wirebson.RawDocument, limit int) (kept, rest []wirebson.RawDocument) {
	size := 0
	for i, doc := range docs {
		if (i > 0 && size+len(doc) > MaxBytes) || i == limit {
			return docs[:i], docs[i:]
		}
		size += len(doc)
	}
	return docs, nil
}

// capped passes msg on to FerretDB and caps its reply's batch, holding the rest under holdAs(FerretDB's
// id), which is called with mu held.
func (c *capper) capped(ctx context.Context, next handlerFunc, msg *wire.OpMsg, batch string, holdAs func(id int64) int64) (*wire.OpMsg, error) {
	reply, err := next(ctx, msg)
	if err != nil || reply == nil {
		return reply, err
	}
	r, ok := readReply(reply, batch)
	if !ok {
		return reply, nil
	}
	kept, rest := split(r.docs, -1)
	if len(rest) == 0 {
		return reply, nil
	}
	c.mu.Lock()
	c.expire()
	id := holdAs(r.id)
	c.held[id] = &held{docs: rest, ns: r.ns, upstream: r.id != 0, touched: time.Now()}
	c.mu.Unlock()
	return makeReply(batch, kept, id, r.ns)
}

// first caps a cursor's first batch (find, aggregate): the rest is held under FerretDB's cursor id, or a
// new one when FerretDB has closed its cursor already.
func (c *capper) first(next handlerFunc) handlerFunc {
	return func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
		return c.capped(ctx, next, msg, "firstBatch", func(id int64) int64 {
			if id == 0 {
				c.nextID++
				id = c.nextID
			}
			return id
		})
	}
}

func (c *capper) getMore(next handlerFunc) handlerFunc {
	return func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
		req, err := msg.RawSection0().Decode()
		if err != nil {
			return next(ctx, msg)
		}
		id, _ := req.Get("getMore").(int64)
		limit := -1
		switch n := req.Get("batchSize").(type) {
		case int32:
			limit = int(n)
		case int64:
			limit = int(n)
		case float64:
			limit = int(n)
		}
		if limit <= 0 {
			limit = -1
		}

		c.mu.Lock()
		h := c.held[id]
		if h != nil {
			kept, rest := split(h.docs, limit)
			h.docs, h.touched = rest, time.Now()
			replyID := id
			if len(rest) == 0 {
				delete(c.held, id)
				if !h.upstream {
					replyID = 0
				}
			}
			c.mu.Unlock()
			return makeReply("nextBatch", kept, replyID, h.ns)
		}
		c.mu.Unlock()

		return c.capped(ctx, next, msg, "nextBatch", func(int64) int64 { return id })
	}
}

func (c *capper) killCursors(next handlerFunc) handlerFunc {
	return func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
		if req, err := msg.RawSection0().Decode(); err == nil {
			if ids, ok := req.Get("cursors").(wirebson.RawArray); ok {
				if arr, err := ids.Decode(); err == nil {
					c.mu.Lock()
					for i := 0; i < arr.Len(); i++ {
						if id, ok := arr.Get(i).(int64); ok {
							delete(c.held, id)
						}
					}
					c.mu.Unlock()
				}
			}
		}
		return next(ctx, msg)
	}
}

// expire drops what abandoned cursors hold (called with mu held).
func (c *capper) expire() {
	for id, h := range c.held {
		if time.Since(h.touched) > idleTimeout {
			delete(c.held, id)
		}
	}
}

type cursorReply struct {
	docs []wirebson.RawDocument
	id   int64
	ns   string
}

// readReply reads {cursor: {<batch>: [...], id, ns}, ok: 1}; false for anything else (an error reply).
func readReply(reply *wire.OpMsg, batch string) (cursorReply, bool) {
	doc, err := reply.RawSection0().Decode()
	if err != nil {
		return cursorReply{}, false
	}
	raw, ok := doc.Get("cursor").(wirebson.RawDocument)
	if !ok {
		return cursorReply{}, false
	}
	cursor, err := raw.Decode()
	if err != nil {
		return cursorReply{}, false
	}
	rawDocs, ok := cursor.Get(batch).(wirebson.RawArray)
	if !ok {
		return cursorReply{}, false
	}
	arr, err := rawDocs.Decode()
	if err != nil {
		return cursorReply{}, false
	}
	r := cursorReply{docs: make([]wirebson.RawDocument, 0, arr.Len())}
	for i := 0; i < arr.Len(); i++ {
		d, ok := arr.Get(i).(wirebson.RawDocument)
		if !ok {
			return cursorReply{}, false
		}
		r.docs = append(r.docs, d)
	}
	r.id, _ = cursor.Get("id").(int64)
	r.ns, _ = cursor.Get("ns").(string)
	return r, true
}

func makeReply(batch string, docs []wirebson.RawDocument, id int64, ns string) (*wire.OpMsg, error) {
	arr := wirebson.MakeArray(len(docs))
	for _, d := range docs {
		if err := arr.Add(d); err != nil {
			return nil, err
		}
	}
	return wire.NewOpMsg(wirebson.MustDocument(
		"cursor", wirebson.MustDocument(batch, arr, "id", id, "ns", ns),
		"ok", float64(1),
	))
}
