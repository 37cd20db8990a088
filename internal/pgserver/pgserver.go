// Package pgserver starts a throwaway PostgreSQL server in a temporary
// directory, for tests, benchmarks and the examples that need one.
//
// The server is a real PostgreSQL (initdb, pg_ctl and postgres from the
// PATH or /usr/lib/postgresql/<version>/bin), configured for logical
// replication (wal_level=logical) and reachable only through a Unix socket
// in its own directory, so servers never compete for a TCP port. PostgreSQL
// refuses to run as root: when the process is root, the server runs as the
// "postgres" user (Debian's postgresql package creates it).
//
// Connect with DSN (a keyword/value string pgx and libpq understand) or
// with Host and Port (Host is the socket directory, which pgx accepts as a
// host name).
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned by Start when the PostgreSQL server binaries
// cannot be found.
var ErrNotInstalled = errors.New("pgserver: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install Debian's postgresql-15 package")

// Options configure Start. The zero value is a server for tests.
type Options struct {
	// Fsync keeps PostgreSQL's fsync and synchronous_commit on. Off by
	// default: a throwaway server need not survive a machine crash, and
	// tests and benchmarks run several times faster without it.
	Fsync bool
	// Settings are extra postgresql.conf lines ("name = value"), applied
	// last.
	Settings []string
}

// Server is a running PostgreSQL server.
type Server struct {
	Dir  string // the temporary directory holding data, socket and log
	Host string // the socket directory, usable as a host name
	Port int    // names the socket file (.s.PGSQL.<Port>)
	User string // the superuser, "postgres"

	bin  string
	cred *syscall.Credential
}

// BinDir finds the directory of the PostgreSQL server binaries: the one
// holding pg_ctl on the PATH, else the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// Start initialises a database cluster in a new temporary directory and
// starts PostgreSQL on it. Stop it with Stop, which also removes the
// directory.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, Port: 5432, User: "postgres"}
	dir, err := os.MkdirTemp("", "sluice-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	s.Dir, s.Host = dir, dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgserver: running as root and there is no postgres user to run the server as (install Debian's postgresql package, or run as another user): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgserver: %w", err)
		}
	}
	if err := s.init(ctx, o); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.dataDir(), "-l", s.LogFile(), "-s"); err != nil {
		log, _ := os.ReadFile(s.LogFile())
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// LogFile is the server's log.
func (s *Server) LogFile() string { return filepath.Join(s.Dir, "postgres.log") }

func (s *Server) init(ctx context.Context, o Options) error {
	if err := s.run(ctx, "initdb", "-D", s.dataDir(), "-U", s.User, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "-N"); err != nil {
		return err
	}
	conf := []string{
		"listen_addresses = ''",
		"unix_socket_directories = '" + s.Dir + "'",
		fmt.Sprintf("port = %d", s.Port),
		"wal_level = logical",
		"max_wal_senders = 20",
		"max_replication_slots = 20",
		"max_connections = 100",
		"log_min_messages = warning",
	}
	if !o.Fsync {
		conf = append(conf, "fsync = off", "synchronous_commit = off", "full_page_writes = off")
	}
	conf = append(conf, o.Settings...)
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	_, err = f.WriteString("\n# sluice pgserver\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// run runs one of the server binaries as the server's user.
func (s *Server) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgserver: %s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// DSN returns a keyword/value connection string for database db ("" is
// "postgres").
func (s *Server) DSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.Host, s.Port, s.User, db)
}

// Connect opens a connection to database db.
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.DSN(db))
}

// Exec runs SQL statements on database db in one connection.
func (s *Server) Exec(ctx context.Context, db string, sql ...string) error {
	c, err := s.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// CreateDatabase creates a database.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	return s.Exec(ctx, "", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// Restart stops the server with a fast shutdown (open sessions, walsenders
// included, are ended with admin_shutdown) and starts it again on the same
// data directory, socket directory and port, as an administrator restarting
// PostgreSQL would. Clients see their connections fail and then, once the
// server accepts connections again (Restart returns then), may reconnect.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.run(ctx, "pg_ctl", "stop", "-w", "-t", "60", "-D", s.dataDir(), "-m", "fast", "-s"); err != nil {
		return err
	}
	// Not pg_ctl restart: it has no -l, and the server would write to (and
	// hold open) the output pipe of pg_ctl.
	if err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.dataDir(), "-l", s.LogFile(), "-s"); err != nil {
		log, _ := os.ReadFile(s.LogFile())
		return fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return nil
}

// Stop stops the server (fast shutdown: open sessions are ended) and
// removes its directory.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.run(ctx, "pg_ctl", "stop", "-w", "-D", s.dataDir(), "-m", "fast", "-s")
	if rerr := os.RemoveAll(s.Dir); err == nil {
		err = rerr
	}
	return err
}
