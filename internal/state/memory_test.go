package state_test

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/state"
	"github.com/mcpgate/mcpgate/internal/state/statetest"
)

func TestMemory(t *testing.T) {
	statetest.Run(t, func(t *testing.T, c *statetest.Clock, maxEntries int, idle time.Duration) state.Store {
		return state.NewMemory(state.MemoryConfig{MaxEntries: maxEntries, IdleTimeout: idle, Now: c.Now})
	})
}

func TestMemoryBoundedRecords(t *testing.T) {
	clk := statetest.NewClock()
	m := state.NewMemory(state.MemoryConfig{MaxRecords: 100, Now: clk.Now})
	for i := range 1000 {
		clk.Advance(time.Millisecond)
		if err := m.AddTaint(t.Context(), state.NewKey("h", string(rune(i))), []string{"x"}); err != nil {
			t.Fatal(err)
		}
		_ = m.Update(t.Context(), state.NewKey("h", string(rune(i))), nil, func(*state.History, []*state.Counter) error { return nil })
	}
	if h, c := m.Len(); h+c > 110 {
		t.Errorf("%d records held, want about the bound of 100", h+c)
	}
}
