// Command ferretdb-local runs FerretDB v1.24.2 (SQLite backend) on loopback: the MongoDB-wire
// database of the service tests, the benchmark and `npm run db:local`. NOT MongoDB: it is built by
// package listener like the stand-in's mongod (without authentication), so its reply batches are
// capped at 16 MiB as MongoDB's are (package batchcap).
//
// Why not `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`? That binary builds but
// panics at start because build/version/version.txt is only generated in FerretDB's own release
// pipeline (FerretDB issue #2982).
//
// Once listening it prints exactly one line `ready <mongodb-uri>` on stdout, which test harnesses
// wait for (the port may be 0 = pick a free one).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/koa-mongodb-standin/listener"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (port 0 picks a free one)")
	dataDir := flag.String("data", "./.ferretdb-data", "directory for the SQLite databases")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: bad -log-level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	dir, err := filepath.Abs(*dataDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: data directory %q: %v\n", *dataDir, err)
		os.Exit(1)
	}

	srv, err := listener.Listen(listener.Options{
		Addr:   *listen,
		DBPath: dir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		srv.Run(ctx)
		close(done)
	}()

	// The listener is bound inside Listen, so the address is known now.
	fmt.Printf("ready %s\n", (&url.URL{Scheme: "mongodb", Host: srv.TCPAddr().String(), Path: "/"}).String())

	<-ctx.Done()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "ferretdb-local: shutdown timed out")
		os.Exit(1)
	}
}
