package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes a child die with the harness (a killed harness
// leaves no servers behind).
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
