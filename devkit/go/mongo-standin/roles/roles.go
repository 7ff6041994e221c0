// Package roles makes FerretDB v1 accept the `roles` of createUser and updateUser, as MongoDB does,
// and ignore them: FerretDB v1 has no roles, and answers any non-empty `roles` with NotImplemented
// (238: common.UnimplementedNonDefault in FerretDB v1.24.2's internal/handler/msg_createuser.go and
// msg_updateuser.go). The product always asks for readWrite on its database; this stand-in takes the
// request and grants nothing (docs/stand-ins.md: "roles accepted, not enforced").
//
// (FerretDB without authentication, devkit/go/ferretdb for the service tests, has no user commands at
// all: nothing to wrap there.)
package roles

import (
	"context"

	"github.com/FerretDB/wire"

	"github.com/FerretDB/FerretDB/internal/bson"
	"github.com/FerretDB/FerretDB/internal/handler"
	"github.com/FerretDB/FerretDB/internal/types"
)

// Accept wraps the handler's createUser and updateUser: a request's `roles` is replaced by an empty
// array (what FerretDB takes) before FerretDB's own handler, authentication check included, sees it.
func Accept(h *handler.Handler) {
	for _, name := range []string{"createUser", "updateUser"} {
		cmd := h.Commands()[name]
		if cmd == nil || cmd.Handler == nil {
			continue
		}
		next := cmd.Handler
		cmd.Handler = func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
			return next(ctx, withoutRoles(msg))
		}
	}
}

// withoutRoles: the message with `roles: []`, or the message itself when it has no roles or is not
// the single-document form the drivers send for these commands (FerretDB then answers it as before).
func withoutRoles(msg *wire.OpMsg) *wire.OpMsg {
	if len(msg.Sections()) != 1 {
		return msg
	}
	doc, err := bson.ToDocument(msg.RawSection0())
	if err != nil || !doc.Has("roles") {
		return msg
	}
	doc.Set("roles", types.MakeArray(0))
	raw, err := bson.FromDocument(doc)
	if err != nil {
		return msg
	}
	stripped, err := wire.NewOpMsg(raw)
	if err != nil {
		return msg
	}
	stripped.Flags = msg.Flags
	return stripped
}
