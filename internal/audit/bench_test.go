package audit

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkFileSinkWrite measures one record through a FileSink with a
// signing key: Fsync always and interval, with 1 and 32 concurrent
// writers (32 writers share fsyncs through group commit).
func BenchmarkFileSinkWrite(b *testing.B) {
	for _, fsync := range []string{FsyncAlways, FsyncPeriodic} {
		for _, writers := range []int{1, 32} {
			b.Run(fsync+"/writers="+strconv.Itoa(writers), func(b *testing.B) {
				dir := b.TempDir()
				k := newTestKey(b, dir, "key.pem")
				s, err := OpenFileSink(FileConfig{Path: filepath.Join(dir, "audit.jsonl"), Fsync: fsync, SigningKeyFile: k.path, RotateSize: 64 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				e := event(1)
				ctx := context.Background()
				b.ReportAllocs()
				if writers == 1 {
					for b.Loop() {
						ev := *e
						if err := s.Write(ctx, &ev); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						ev := *e
						if err := s.Write(ctx, &ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

func BenchmarkStreamSinkWrite(b *testing.B) {
	k := newTestKey(b, b.TempDir(), "key.pem")
	s, err := NewStreamSink(io.Discard, StreamConfig{SigningKeyFile: k.path, CheckpointInterval: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	e := event(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ev := *e
		if err := s.Write(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	tr := writeTrail(b, 1000)
	p := filepath.Join(b.TempDir(), "audit.jsonl")
	writeFileMode(b, p, join(tr.lines), 0o600)
	b.ReportAllocs()
	for b.Loop() {
		if r, err := Verify([]string{p}, nil); err != nil || !r.OK() {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tr.lines)), "ns/record")
}
