package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a target's server running as a child process.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// tailBuffer keeps the last max bytes written to it (a child's standard
// error, for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// startProcess starts argv with extra environment variables. When
// waitListen is set it waits for the child's "LISTEN <url>" line on
// standard output and returns the URL; otherwise standard output is
// discarded.
func startProcess(ctx context.Context, name string, argv []string, env []string, waitListen bool) (*process, string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	setChildAttrs(cmd)
	p := &process{name: name, cmd: cmd, stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	var stdout io.ReadCloser
	if waitListen {
		var err error
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	lines := make(chan string, 1)
	if waitListen {
		go func() {
			sc := bufio.NewScanner(stdout)
			first := true
			for sc.Scan() {
				if first {
					lines <- sc.Text()
					first = false
				}
			}
			if first {
				close(lines)
			}
		}()
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if !waitListen {
		return p, "", nil
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, listenPrefix) {
			p.kill()
			return nil, "", fmt.Errorf("%s did not report its address (got %q): %s", name, line, p.stderr.String())
		}
		return p, strings.TrimPrefix(line, listenPrefix), nil
	case <-p.exited:
		return nil, "", fmt.Errorf("%s exited at start: %v\n%s", name, p.err, p.stderr.String())
	case <-timer.C:
		p.kill()
		return nil, "", fmt.Errorf("%s did not start within 30s: %s", name, p.stderr.String())
	case <-ctx.Done():
		p.kill()
		return nil, "", ctx.Err()
	}
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// alive returns an error if the process has exited.
func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.stderr.String())
	default:
		return nil
	}
}

// stop asks the process to stop (SIGINT), waits up to timeout, then kills
// it. It returns the exit error of a process that did not stop cleanly.
func (p *process) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.kill()
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("%s: %w\n%s", p.name, p.err, p.stderr.String())
		}
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not stop within %s; killed", p.name, timeout)
	}
}

// kill ends the process at once and waits for it.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
