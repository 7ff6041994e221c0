// Command nettool is the test image of devkit/node's smoke test, a static binary in
// a scratch image made here: `serve ADDR` answers HTTP with the pod's name (and
// burns CPU on /burn so metrics have something to report), `resolve NAME` prints
// the addresses the pod's resolver gives for NAME, `get URL` prints a body.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: nettool serve ADDR | resolve NAME | get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "resolve":
		addrs, err := net.LookupHost(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, addr := range addrs {
			fmt.Println(addr)
		}
	case "get":
		client := http.Client{Timeout: 10 * time.Second}
		res, err := client.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer res.Body.Close()
		_, _ = io.Copy(os.Stdout, res.Body)
		if res.StatusCode != http.StatusOK {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func serve(addr string) {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	// /burn?ms=N spins one core for N milliseconds: real CPU for the metrics pipeline.
	http.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		ms := 200
		fmt.Sscanf(r.URL.Query().Get("ms"), "%d", &ms)
		deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
		n := 0
		for time.Now().Before(deadline) {
			n++
		}
		fmt.Fprintf(w, "burned %d ms (%d loops)\n", ms, n)
	})
	server := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	if err := server.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
