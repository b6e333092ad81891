// Package redistest starts a real redis-server for tests: on a free
// loopback port, in a temporary directory, with a password, stopped when
// the test ends. Tests that need Redis fail (never skip) when redis-server
// is not installed; scripts/test installs it.
package redistest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// Server is one running redis-server.
type Server struct {
	// Addr is host:port.
	Addr string
	// Password is the server's requirepass.
	Password string
	// PasswordFile holds Password (0600), for configurations.
	PasswordFile string

	t    testing.TB
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a server and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: run scripts/test (it installs it with apt-get) or 'apt-get install redis-server': %v", err)
	}
	dir := t.TempDir()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, dir: dir, Password: hex.EncodeToString(b[:]), PasswordFile: filepath.Join(dir, "password")}
	if err := os.WriteFile(s.PasswordFile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Addr = freeAddr(t)
	s.startLocked()
	t.Cleanup(s.Stop)
	return s
}

// URL is redis://host:port/0 (the password is in PasswordFile).
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *Server) startLocked() {
	t := s.t
	_, port, _ := net.SplitHostPort(s.Addr)
	// The password reaches the server on stdin (a config read from "-"),
	// never on its command line.
	cmd := exec.Command("redis-server", "-",
		"--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--protected-mode", "yes", "--loglevel", "warning", "--logfile", filepath.Join(s.dir, "redis.log"))
	cmd.Stdin = strings.NewReader("requirepass " + s.Password + "\n")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.ping(); err == nil {
			return
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			t.Fatalf("redis-server on %s not ready: %v\n%s", s.Addr, err, log)
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			t.Fatalf("redis-server exited at start: %s", log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends AUTH and PING over a plain connection.
func (s *Server) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n", len(s.Password), s.Password)
	r := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != want {
			return fmt.Errorf("redis answered %q", strings.TrimSpace(line))
		}
	}
	return nil
}

// Stop kills the server (as a crash would) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped server again on the same address, empty (as
// after a failover to a replica that lost the data).
func (s *Server) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redistest: Restart of a running server")
	}
	s.startLocked()
}

// Freeze stops the server process (SIGSTOP) without closing its
// connections: to clients it looks like a network partition or a hung
// server. Thaw resumes it.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Client returns a plain client (no client-side caching) for inspecting
// and disturbing the server, closed when t ends.
func (s *Server) Client(t testing.TB) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr}, Password: s.Password, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
