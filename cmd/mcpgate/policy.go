package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/mcpgate/mcpgate/internal/scenario"
	"github.com/mcpgate/mcpgate/internal/toolpin"
)

// policyCmd runs `mcpgate policy test FILE...`.
func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: mcpgate policy test SCENARIO.yaml...")
		return 2
	}
	var files []string
	for _, a := range args[1:] {
		m, err := filepath.Glob(a)
		if err != nil || len(m) == 0 {
			m = []string{a}
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: mcpgate policy test SCENARIO.yaml...")
		return 2
	}
	failed, steps := 0, 0
	for _, f := range files {
		res, err := scenario.Run(context.Background(), f, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "mcpgate policy test: %v\n", err)
			return 1
		}
		steps += res.Steps
		failed += len(res.Failed)
	}
	fmt.Fprintf(stdout, "\n%d scenario files, %d calls, %d failed\n", len(files), steps, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// pinsCmd runs `mcpgate pins list --file F` and
// `mcpgate pins approve --file F --route R --tool T [--fingerprint FP]`.
func pinsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "approve") {
		fmt.Fprintln(stderr, "usage: mcpgate pins list --file PINS.json | mcpgate pins approve --file PINS.json --route R --tool T [--fingerprint FP]")
		return 2
	}
	fs := flag.NewFlagSet("pins "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "the tool pins file (tool_pins_file in the configuration)")
	route := fs.String("route", "", "route name")
	tool := fs.String("tool", "", "tool name")
	fp := fs.String("fingerprint", "", "approve only this reviewed fingerprint (from pins list)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "mcpgate pins: --file is required")
		return 2
	}
	if args[0] == "list" {
		entries, err := toolpin.ListFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "mcpgate pins: %v\n", err)
			return 1
		}
		for _, e := range entries {
			fmt.Fprintf(stdout, "%-12s %-32s %-8s pin=%s", e.Route, e.Tool, e.Status, short(e.Pin))
			if e.Observed != "" && e.Observed != e.Pin {
				fmt.Fprintf(stdout, " observed=%s (%s)", short(e.Observed), e.ObservedAt.Format(time.RFC3339))
			}
			fmt.Fprintln(stdout)
		}
		return 0
	}
	if *route == "" || *tool == "" {
		fmt.Fprintln(stderr, "mcpgate pins approve: --route and --tool are required")
		return 2
	}
	var err error
	if *fp != "" {
		err = toolpin.ApproveFingerprintInFile(*file, *route, *tool, *fp)
	} else {
		err = toolpin.ApproveInFile(*file, *route, *tool)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate pins approve: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "approved %s/%s; a running gateway picks it up within seconds\n", *route, *tool)
	return 0
}

func short(fp string) string {
	if len(fp) > 22 {
		return fp[:22] + "…"
	}
	return fp
}
