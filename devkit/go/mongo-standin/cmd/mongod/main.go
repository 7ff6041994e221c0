// Command mongod is the MongoDB STAND-IN's server: FerretDB v1.24.2 with its SQLite backend,
// started the way the official mongo image's entrypoint starts mongod, for clusters that cannot
// fetch the real image. It is not MongoDB: see devkit/images/README.md for what differs.
//
// The parts of the official image's contract it honours:
//   - data in /data/db (one SQLite file per database), listening on 27017 on all addresses;
//   - on an empty data directory with MONGO_INITDB_ROOT_USERNAME/PASSWORD (or their _FILE forms)
//     set: the root user is created in admin, then /docker-entrypoint-initdb.d/*.js run through
//     mongosh as root against MONGO_INITDB_DATABASE (default test), and *.sh through sh, all while
//     listening on 127.0.0.1 only; then it restarts on all addresses;
//   - authentication (SCRAM) is required whenever a root user is configured (or --auth is given);
//   - started as root, it hands /data/db to uid 999 and drops to it (the image's USER is 999 anyway);
//   - mongod's own flags the stack passes are accepted; storage-engine tuning is ignored.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/koa-mongodb-standin/listener"
)

const (
	mongodbUID  = 999
	standInName = "mongo-standin (FerretDB v1.24.2, SQLite)"
)

// initDir is the official image's; MONGO_STANDIN_INITDB_DIR (stand-in only) moves it for runs outside the image.
var initDir = envDefault("MONGO_STANDIN_INITDB_DIR", "/docker-entrypoint-initdb.d")

var logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mongod (stand-in): %v\n", err)
		os.Exit(2)
	}
	if opts.version {
		fmt.Printf("mongod stand-in: %s; not MongoDB\n", standInName)
		return
	}
	if err := run(opts); err != nil {
		logger.Error("stand-in failed", "error", err.Error())
		os.Exit(1)
	}
}

type options struct {
	bindIP  string
	port    int
	dbPath  string
	auth    bool
	version bool
}

// parseArgs accepts the mongod flags this stack (and the official entrypoint) may pass.
// Unknown flags are refused, as mongod refuses them.
func parseArgs(args []string) (*options, error) {
	o := &options{bindIP: "0.0.0.0", port: 27017, dbPath: "/data/db"}
	if len(args) > 0 && args[0] == "mongod" { // CMD ["mongod", ...] as with the official image
		args = args[1:]
	}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
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
		switch name {
		case "--wiredTigerCacheSizeGB":
			v, err := next()
			if err != nil {
				return nil, err
			}
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return nil, fmt.Errorf("--wiredTigerCacheSizeGB %q: not a number", v)
			}
			logger.Info("ignored: the stand-in has no WiredTiger cache (SQLite backend)", "wiredTigerCacheSizeGB", v)
		case "--bind_ip":
			v, err := next()
			if err != nil {
				return nil, err
			}
			o.bindIP = strings.Split(v, ",")[0]
		case "--bind_ip_all":
			o.bindIP = "0.0.0.0"
		case "--port":
			v, err := next()
			if err != nil {
				return nil, err
			}
			if o.port, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("--port %q: %v", v, err)
			}
		case "--dbpath":
			v, err := next()
			if err != nil {
				return nil, err
			}
			o.dbPath = v
		case "--auth":
			o.auth = true
		case "--quiet":
		case "--version":
			o.version = true
		default:
			return nil, fmt.Errorf("unrecognised option %q (this is a stand-in that accepts only what the stack passes)", args[i])
		}
	}
	return o, nil
}

func run(o *options) error {
	rootUser, err := envOrFile("MONGO_INITDB_ROOT_USERNAME")
	if err != nil {
		return err
	}
	rootPassword, err := envOrFile("MONGO_INITDB_ROOT_PASSWORD")
	if err != nil {
		return err
	}
	if (rootUser == "") != (rootPassword == "") {
		return errors.New("MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD must be set together")
	}
	auth := o.auth || rootUser != ""

	// Parents stay traversable for uid 999; the directory itself is the database's alone.
	if err := os.MkdirAll(filepath.Dir(o.dbPath), 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.Mkdir(o.dbPath, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("data directory: %w", err)
	}
	if os.Getuid() == 0 {
		if err := dropToMongodb(o.dbPath); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	empty, err := emptyDataDir(o.dbPath)
	if err != nil {
		return err
	}
	if empty && (rootUser != "" || hasInitScripts()) {
		logger.Info("empty data directory: initialising on 127.0.0.1 first", "dbpath", o.dbPath)
		if err := initialise(ctx, o, rootUser, rootPassword); err != nil {
			return fmt.Errorf("initialisation: %w", err)
		}
		logger.Info("initialisation done; restarting on all configured addresses")
	}

	srv, err := listener.Listen(listener.Options{Addr: net.JoinHostPort(o.bindIP, strconv.Itoa(o.port)), DBPath: o.dbPath, Auth: auth})
	if err != nil {
		return err
	}
	logger.Info("waiting for connections", "standIn", standInName, "addr", srv.TCPAddr().String(), "auth", auth)
	srv.Run(ctx)
	return nil
}

// initialise creates the root user and runs the init scripts against a loopback-only server.
func initialise(parent context.Context, o *options, rootUser, rootPassword string) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))
	srv, err := listener.Listen(listener.Options{Addr: addr, DBPath: o.dbPath, Auth: rootUser != "", SetupUser: rootUser, SetupPassword: rootPassword})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		srv.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	if rootUser != "" {
		logger.Info("created the root user in admin", "user", rootUser)
	}
	return runInitScripts(ctx, o.port, rootUser, rootPassword)
}

func runInitScripts(ctx context.Context, port int, rootUser, rootPassword string) error {
	entries, err := os.ReadDir(initDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	database := os.Getenv("MONGO_INITDB_DATABASE")
	if database == "" {
		database = "test"
	}
	for _, name := range names {
		file := filepath.Join(initDir, name)
		var cmd *exec.Cmd
		switch {
		case strings.HasSuffix(name, ".js"):
			args := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--quiet"}
			if rootUser != "" {
				args = append(args, "-u", rootUser, "--authenticationDatabase", "admin")
			}
			cmd = exec.CommandContext(ctx, "mongosh", append(args, database, file)...)
			// The password goes by environment, not argv (where ps would show it).
			cmd.Env = append(os.Environ(), "MONGOSH_STANDIN_PASSWORD="+rootPassword)
		case strings.HasSuffix(name, ".sh"):
			cmd = exec.CommandContext(ctx, "sh", file)
		default:
			logger.Info("ignoring init file", "file", file)
			continue
		}
		logger.Info("running init file", "file", file)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	return nil
}

// emptyDataDir: nothing but dot files and lost+found, as the official entrypoint judges it.
func emptyDataDir(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && e.Name() != "lost+found" {
			return false, nil
		}
	}
	return true, nil
}

func hasInitScripts() bool {
	entries, _ := os.ReadDir(initDir)
	return len(entries) > 0
}

// envOrFile reads NAME, or the file named by NAME_FILE (Docker secrets), as the official image does.
func envOrFile(name string) (string, error) {
	value, file := os.Getenv(name), os.Getenv(name+"_FILE")
	if value != "" && file != "" {
		return "", fmt.Errorf("both %s and %s_FILE are set (but are exclusive)", name, name)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return value, nil
}

// dropToMongodb hands the data directory to uid 999 and switches to it, as the official
// entrypoint does with gosu.
func dropToMongodb(dbPath string) error {
	err := filepath.WalkDir(dbPath, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, mongodbUID, mongodbUID)
	})
	if err != nil {
		return fmt.Errorf("chown %s: %w", dbPath, err)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(mongodbUID); err != nil {
		return err
	}
	return syscall.Setuid(mongodbUID)
}

func envDefault(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
