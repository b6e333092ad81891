package secret

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// watchClock is a manual clock.
type watchClock struct {
	mu sync.Mutex
	t  time.Time
}

func newWatchClock() *watchClock {
	return &watchClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *watchClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *watchClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// watchSecret returns a random secret-looking value of a fixed length.
func watchSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "sv-" + hex.EncodeToString(b)
}

func writeSecret(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// wantValue asserts the watched value and returns its version.
func wantValue(t *testing.T, f *File, want string) uint64 {
	t.Helper()
	v, ver, err := f.Current()
	if err != nil || string(v) != want {
		t.Fatalf("Current() = %q, %v; want %q", v, err, want)
	}
	if got, err := f.Value(); err != nil || string(got) != want {
		t.Fatalf("Value() = %q, %v; want %q", got, err, want)
	}
	return ver
}

// wantError asserts that the watched file fails, with an error that names
// none of the secrets.
func wantError(t *testing.T, f *File, contains string, secrets ...string) {
	t.Helper()
	v, err := f.Value()
	if err == nil {
		t.Fatalf("Value() = %q, nil; want an error", v)
	}
	if v != nil {
		t.Fatalf("Value() returned %q with error %v", v, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not contain %q", err, contains)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q leaks the secret", err)
		}
	}
}

func TestWatchInitialRead(t *testing.T) {
	dir := t.TempDir()
	sec := watchSecret(t)
	for _, tc := range []struct {
		name    string
		setup   func(p string)
		wantErr string
	}{
		{"ok", func(p string) { writeSecret(t, p, sec+"\n", 0o600) }, ""},
		{"missing", func(string) {}, "no such file"},
		{"world readable", func(p string) { writeSecret(t, p, sec, 0o644) }, "accessible by other users"},
		{"empty", func(p string) { writeSecret(t, p, "\n", 0o600) }, "is empty"},
		{"directory", func(p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			tc.setup(p)
			f, err := Watch(p)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v := wantValue(t, f, sec); v != 1 {
					t.Fatalf("initial version %d, want 1", v)
				}
				if f.Path() != p {
					t.Fatalf("Path() = %q", f.Path())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Watch err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), sec) {
				t.Fatal("error leaks the secret")
			}
		})
	}
}

func TestWatchDetectsChanges(t *testing.T) {
	t.Run("new content after the interval, not before", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "token")
		a, b := watchSecret(t), watchSecret(t)+"-longer"
		writeSecret(t, p, a, 0o600)
		clk := newWatchClock()
		var changes atomic.Int32
		f, err := Watch(p, WithClock(clk.now), WithInterval(5*time.Second), WithOnChange(func() { changes.Add(1) }))
		if err != nil {
			t.Fatal(err)
		}
		v1 := wantValue(t, f, a)
		writeSecret(t, p, b, 0o600)
		clk.advance(4 * time.Second)
		wantValue(t, f, a) // within the interval: not re-checked
		clk.advance(time.Second)
		v2 := wantValue(t, f, b)
		if v2 != v1+1 || changes.Load() != 1 {
			t.Fatalf("version %d→%d, %d change calls; want one change", v1, v2, changes.Load())
		}
		clk.advance(time.Hour) // no change: same version, no call
		if v3 := wantValue(t, f, b); v3 != v2 || changes.Load() != 1 {
			t.Fatalf("unchanged file bumped the version to %d (%d calls)", v3, changes.Load())
		}
	})

	t.Run("same size rewrite with a new mtime", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "token")
		a, b := watchSecret(t), watchSecret(t)
		if len(a) != len(b) {
			t.Fatal("fixture sizes differ")
		}
		writeSecret(t, p, a, 0o600)
		clk := newWatchClock()
		f, err := Watch(p, WithClock(clk.now))
		if err != nil {
			t.Fatal(err)
		}
		before, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// Rewrite in place (same inode, same size) with a later mtime.
		writeSecret(t, p, b, 0o600)
		mt := before.ModTime().Add(2 * time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) || before.Size() != after.Size() {
			t.Fatal("fixture: expected an in-place rewrite of equal size")
		}
		clk.advance(time.Second)
		wantValue(t, f, b)
	})

	t.Run("kubernetes ..data symlink swap", func(t *testing.T) {
		dir := t.TempDir()
		a, b := watchSecret(t), watchSecret(t)
		mt := time.Date(2029, 5, 6, 7, 8, 9, 0, time.UTC)
		// mount/..2030_a/token, mount/..data → ..2030_a, mount/token → ..data/token
		version := func(name, content string) {
			d := filepath.Join(dir, name)
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			writeSecret(t, filepath.Join(d, "token"), content, 0o400)
			// Equal size and mtime: only the inode tells the versions apart.
			if err := os.Chtimes(filepath.Join(d, "token"), mt, mt); err != nil {
				t.Fatal(err)
			}
		}
		version("..2030_a", a)
		if err := os.Symlink("..2030_a", filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "token")
		if err := os.Symlink(filepath.Join("..data", "token"), p); err != nil {
			t.Fatal(err)
		}
		clk := newWatchClock()
		f, err := Watch(p, WithClock(clk.now))
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, f, a)

		version("..2030_b", b)
		if err := os.Symlink("..2030_b", filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "..2030_a")); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Second)
		wantValue(t, f, b)
	})

	t.Run("interval <= 0 checks on every access", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "token")
		a, b := watchSecret(t), watchSecret(t)+"x"
		writeSecret(t, p, a, 0o600)
		f, err := Watch(p, WithInterval(0), WithClock(newWatchClock().now))
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, f, a)
		writeSecret(t, p, b, 0o600)
		wantValue(t, f, b)
	})

	t.Run("clock going backwards triggers a check", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "token")
		a, b := watchSecret(t), watchSecret(t)+"x"
		writeSecret(t, p, a, 0o600)
		clk := newWatchClock()
		f, err := Watch(p, WithClock(clk.now))
		if err != nil {
			t.Fatal(err)
		}
		writeSecret(t, p, b, 0o600)
		clk.advance(-time.Minute)
		wantValue(t, f, b)
	})
}

func TestWatchFailsClosedAndRecovers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, p, content string)
		fix     func(t *testing.T, p, content string)
		wantErr string
	}{
		{
			name:    "made world readable",
			breakIt: func(t *testing.T, p, _ string) { chmod(t, p, 0o644) },
			fix:     func(t *testing.T, p, c string) { writeSecret(t, p, c, 0o600) },
			wantErr: "accessible by other users",
		},
		{
			name: "removed",
			breakIt: func(t *testing.T, p, _ string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			},
			fix:     func(t *testing.T, p, c string) { writeSecret(t, p, c, 0o600) },
			wantErr: "no such file",
		},
		{
			name:    "emptied",
			breakIt: func(t *testing.T, p, _ string) { writeSecret(t, p, "", 0o600) },
			fix:     func(t *testing.T, p, c string) { writeSecret(t, p, c, 0o600) },
			wantErr: "is empty",
		},
		{
			name: "replaced by a directory",
			breakIt: func(t *testing.T, p, _ string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			fix: func(t *testing.T, p, c string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				writeSecret(t, p, c, 0o600)
			},
			wantErr: "not a regular file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "token")
			sec := watchSecret(t)
			writeSecret(t, p, sec, 0o600)
			clk := newWatchClock()
			var changes atomic.Int32
			f, err := Watch(p, WithClock(clk.now), WithOnChange(func() { changes.Add(1) }))
			if err != nil {
				t.Fatal(err)
			}
			v1 := wantValue(t, f, sec)

			tc.breakIt(t, p, sec)
			clk.advance(time.Second)
			wantError(t, f, tc.wantErr, sec)
			if _, _, err := f.Current(); err == nil {
				t.Fatal("Current() succeeded on a broken file")
			}
			clk.advance(time.Second) // still broken at the next interval
			wantError(t, f, tc.wantErr, sec)

			tc.fix(t, p, sec)
			wantError(t, f, tc.wantErr, sec) // not re-checked within the interval
			clk.advance(time.Second)
			if v2 := wantValue(t, f, sec); v2 != v1 || changes.Load() != 0 {
				t.Fatalf("recovery with the same content: version %d→%d, %d change calls", v1, v2, changes.Load())
			}

			// A broken file fixed with new content is a change.
			tc.breakIt(t, p, sec)
			clk.advance(time.Second)
			wantError(t, f, tc.wantErr, sec)
			next := watchSecret(t)
			tc.fix(t, p, next)
			clk.advance(time.Second)
			if v3 := wantValue(t, f, next); v3 != v1+1 || changes.Load() != 1 {
				t.Fatalf("recovery with new content: version %d→%d, %d change calls", v1, v3, changes.Load())
			}
		})
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestWatchValueIsACopy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	sec := watchSecret(t)
	writeSecret(t, p, sec, 0o600)
	f, err := Watch(p)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.Value()
	v[0] ^= 0xff
	wantValue(t, f, sec)
}

func TestWatchOnChangeMayCallBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	a, b := watchSecret(t), watchSecret(t)+"x"
	writeSecret(t, p, a, 0o600)
	clk := newWatchClock()
	var f *File
	var seen string
	f, err := Watch(p, WithClock(clk.now), WithOnChange(func() {
		v, _ := f.Value() // must not deadlock
		seen = string(v)
	}))
	if err != nil {
		t.Fatal(err)
	}
	writeSecret(t, p, b, 0o600)
	clk.advance(time.Second)
	wantValue(t, f, b)
	if seen != b {
		t.Fatalf("OnChange saw %q, want the new value", seen)
	}
}

func TestWatchConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	values := []string{watchSecret(t), watchSecret(t) + "-b", watchSecret(t) + "-cc"}
	writeSecret(t, p, values[0], 0o600)
	f, err := Watch(p, WithInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	valid := map[string]bool{}
	for _, v := range values {
		valid[v] = true
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := f.Value()
				if err == nil && !valid[string(v)] {
					// A torn read shows up as an unknown value (or,
					// between truncate and write, as "is empty").
					t.Errorf("Value() = %q", v)
					return
				}
			}
		})
	}
	for i := range 200 {
		// Replace atomically, as secret managers do.
		tmp := p + ".tmp"
		writeSecret(t, tmp, values[i%len(values)], 0o600)
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	writeSecret(t, p+".tmp", values[1], 0o600)
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	wantValue(t, f, values[1])
}

func BenchmarkWatchValueUnchanged(b *testing.B) {
	p := filepath.Join(b.TempDir(), "token")
	if err := os.WriteFile(p, []byte("value"), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := Watch(p)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.Current(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWatchChmodOnlyRecovery(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	sec := watchSecret(t)
	writeSecret(t, p, sec, 0o600)
	clk := newWatchClock()
	f, err := Watch(p, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o604, 0o602, 0o601} {
		chmod(t, p, mode)
		clk.advance(time.Second)
		wantError(t, f, "accessible by other users", sec)
		chmod(t, p, 0o440)
		clk.advance(time.Second)
		wantValue(t, f, sec)
	}
}
