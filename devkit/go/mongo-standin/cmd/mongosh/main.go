// Command mongosh is a STAND-IN for MongoDB's shell, shipped in the mongo stand-in image so the
// stack's probes and init scripts run unchanged. It is not mongosh: it runs --eval code and .js
// files in a small JavaScript engine (goja) with the few shell globals those use: db (runCommand,
// adminCommand, getSiblingDB, getName, createUser, dropUser, changeUserPassword, getUsers,
// serverStatus, getCollection(...).insertOne/findOne/countDocuments), print, printjson, quit,
// sleep and process.env. Any other shell API is a ReferenceError/TypeError, as a typo would be.
//
// Usage (the subset of mongosh's): mongosh [--quiet] [--norc] [--host H] [--port P]
//
//	[-u USER] [-p PASSWORD] [--authenticationDatabase DB] [--eval CODE]... [DB | URI] [FILE.js]...
//
// The password may also come from MONGOSH_STANDIN_PASSWORD (the stand-in's entrypoint passes it
// that way so it never shows in argv).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

type cli struct {
	host, port, user, password, authDB, dbName, uri string
	evals, files                                    []string
}

func parse(args []string) (*cli, error) {
	c := &cli{host: "127.0.0.1", port: "27017", dbName: "test"}
	positional := []string{}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		if !strings.HasPrefix(name, "-") {
			positional = append(positional, args[i])
			continue
		}
		next := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--quiet", "--norc", "--nodb=false":
		case "--host":
			c.host, err = next()
		case "--port":
			c.port, err = next()
		case "-u", "--username":
			c.user, err = next()
		case "-p", "--password":
			c.password, err = next()
		case "--authenticationDatabase":
			c.authDB, err = next()
		case "--eval":
			var code string
			code, err = next()
			c.evals = append(c.evals, code)
		case "--version":
			fmt.Println("mongosh stand-in (goja + Go driver) for the FerretDB mongo stand-in; not MongoDB's mongosh")
			os.Exit(0)
		default:
			return nil, fmt.Errorf("unsupported option %q (this is a stand-in for the probes and init scripts)", args[i])
		}
		if err != nil {
			return nil, err
		}
	}
	for _, p := range positional {
		switch {
		case strings.HasSuffix(p, ".js"):
			c.files = append(c.files, p)
		case strings.HasPrefix(p, "mongodb://"):
			c.uri = p
		case strings.Contains(p, "/"): // host[:port]/db
			hostPort, db, _ := strings.Cut(p, "/")
			c.host, c.dbName = hostPort, db
			if h, port, err := net.SplitHostPort(hostPort); err == nil {
				c.host, c.port = h, port
			}
		default:
			c.dbName = p
		}
	}
	if c.user != "" && c.password == "" {
		c.password = os.Getenv("MONGOSH_STANDIN_PASSWORD")
	}
	return c, nil
}

func main() {
	c, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mongosh (stand-in): %v\n", err)
		os.Exit(2)
	}
	opts := options.Client().
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetDirect(true)
	if c.uri != "" {
		opts.ApplyURI(c.uri)
		if cs, err := parseURIDatabase(c.uri); err == nil && cs != "" {
			c.dbName = cs
		}
	} else {
		opts.ApplyURI("mongodb://" + net.JoinHostPort(c.host, c.port) + "/")
	}
	if c.user != "" {
		authDB := c.authDB
		if authDB == "" {
			authDB = c.dbName
		}
		opts.SetAuth(options.Credential{Username: c.user, Password: c.password, AuthSource: authDB})
	}
	ctx := context.Background()
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "MongoNetworkError: %v\n", err)
		os.Exit(1)
	}
	// Like mongosh, connect (and authenticate) before running anything: a wrong password fails here.
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		fmt.Fprintf(os.Stderr, "MongoServerError: %v\n", err)
		os.Exit(1)
	}
	sh := newShell(client, c.dbName)
	// No Disconnect: its endSessions is a command FerretDB 1.24 lacks (it would log a warning
	// per probe); exiting closes the connection just the same.
	os.Exit(sh.runAll(c.evals, c.files))
}

func parseURIDatabase(uri string) (string, error) {
	rest := strings.TrimPrefix(uri, "mongodb://")
	_, path, found := strings.Cut(rest, "/")
	if !found {
		return "", nil
	}
	db, _, _ := strings.Cut(path, "?")
	return db, nil
}
