// Package listener builds FerretDB v1.24.2's handler and listener as its embeddable package does
// (ferretdb/ferretdb.go New: SQLite, telemetry off), with what the stand-ins add to it: when asked,
// the experimental SCRAM authentication and a setup (root) user in admin; always, the roles of
// createUser/updateUser accepted (package roles) and reply batches capped at 16 MiB (package
// batchcap), as MongoDB does. Used by the stand-in's mongod and by ferretdb-local (the tests').
package listener

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/build/version"
	"github.com/FerretDB/FerretDB/internal/clientconn"
	"github.com/FerretDB/FerretDB/internal/clientconn/connmetrics"
	"github.com/FerretDB/FerretDB/internal/handler/registry"
	"github.com/FerretDB/FerretDB/internal/util/password"
	"github.com/FerretDB/FerretDB/internal/util/state"

	"github.com/FerretDB/FerretDB/koa-mongodb-standin/batchcap"
	"github.com/FerretDB/FerretDB/koa-mongodb-standin/roles"
)

// Options of one server.
type Options struct {
	// Addr is host:port; port 0 picks a free one (see TCPAddr).
	Addr string
	// DBPath holds one SQLite file per database.
	DBPath string
	// Auth requires SCRAM authentication.
	Auth bool
	// SetupUser and SetupPassword, when set, are created in admin at start.
	SetupUser, SetupPassword string
	// Logger for FerretDB's own lines (default: warnings and worse on stderr).
	Logger *slog.Logger
}

// Server is a listening FerretDB; Run serves until its context ends.
type Server struct {
	l     *clientconn.Listener
	close func()
}

// Run serves until ctx ends, then closes the backend.
func (s *Server) Run(ctx context.Context) {
	defer s.close()
	s.l.Run(ctx)
}

// TCPAddr is the address it listens on (bound by Listen).
func (s *Server) TCPAddr() net.Addr {
	return s.l.TCPAddr()
}

// Listen builds the handler and binds the listener.
func Listen(o Options) (*Server, error) {
	version.Get().Package = "koa-mongodb-standin"
	sp, err := state.NewProvider("")
	if err != nil {
		return nil, err
	}
	if err := sp.Update(func(s *state.State) { s.DisableTelemetry(); s.TelemetryLocked = true }); err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	metrics := connmetrics.NewListenerMetrics()
	opts := &registry.NewHandlerOpts{
		Logger:        logger,
		ConnMetrics:   metrics.ConnMetrics,
		StateProvider: sp,
		TCPHost:       o.Addr,
		SQLiteURL:     "file:" + strings.TrimSuffix(o.DBPath, "/") + "/",
		TestOpts: registry.TestOpts{
			CappedCleanupPercentage: 10,
			BatchSize:               100,
			EnableNewAuth:           o.Auth,
		},
	}
	if o.SetupUser != "" {
		opts.SetupDatabase = "admin"
		opts.SetupUsername = o.SetupUser
		opts.SetupPassword = password.WrapPassword(o.SetupPassword)
		opts.SetupTimeout = 30 * time.Second
	}
	h, closeBackend, err := registry.NewHandler("sqlite", opts)
	if err != nil {
		if closeBackend != nil {
			closeBackend()
		}
		return nil, fmt.Errorf("FerretDB handler: %w", err)
	}
	// MongoDB's createUser/updateUser take roles; FerretDB v1 has none and refuses them: accepted, not enforced.
	roles.Accept(h)
	// MongoDB sends at most 16 MiB of documents per batch; FerretDB v1 counts documents only.
	batchcap.Apply(h)
	l, err := clientconn.Listen(&clientconn.NewListenerOpts{
		TCP:     o.Addr,
		Mode:    clientconn.NormalMode,
		Metrics: metrics,
		Handler: h,
		Logger:  logger,
	})
	if err != nil {
		closeBackend()
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	return &Server{l: l, close: closeBackend}, nil
}
