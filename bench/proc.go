package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// cpuTicks is a process's CPU time in clock ticks: utime and stime of
// /proc/<pid>/stat, which cover every thread of the process.
type cpuTicks struct {
	User, System uint64
}

// Total returns user plus system ticks.
func (c cpuTicks) Total() uint64 { return c.User + c.System }

// parseProcStat extracts utime and stime (fields 14 and 15, see proc(5))
// from the contents of /proc/<pid>/stat. The command name (field 2) is
// parenthesised and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(b []byte) (cpuTicks, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || bytes.IndexByte(b, '(') < 0 || bytes.IndexByte(b, '(') > end {
		return cpuTicks{}, errors.New("proc stat: no parenthesised command name")
	}
	// After ") " come fields 3 (state) onwards: utime is field 14, index 11.
	rest := strings.Fields(string(b[end+1:]))
	if len(rest) < 13 {
		return cpuTicks{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(rest))
	}
	u, err := strconv.ParseUint(rest[11], 10, 64)
	if err != nil {
		return cpuTicks{}, fmt.Errorf("proc stat: utime: %w", err)
	}
	s, err := strconv.ParseUint(rest[12], 10, 64)
	if err != nil {
		return cpuTicks{}, fmt.Errorf("proc stat: stime: %w", err)
	}
	return cpuTicks{User: u, System: s}, nil
}

// readCPU reads the CPU ticks of process pid.
func readCPU(pid int) (cpuTicks, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuTicks{}, fmt.Errorf("read cpu of pid %d: %w", pid, err)
	}
	return parseProcStat(b)
}

// clockTicks returns the kernel's USER_HZ (`getconf CLK_TCK`), 100 when
// getconf is unavailable (the value on every Linux architecture Go runs on).
func clockTicks(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// ticksToDuration converts clock ticks to a duration at hz ticks/second.
func ticksToDuration(ticks uint64, hz int64) time.Duration {
	return time.Duration(float64(ticks) * float64(time.Second) / float64(hz))
}
