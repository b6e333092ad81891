package upstream

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBounded(t *testing.T) {
	const limit = 100
	long := strings.Repeat("a", maxPrealloc+10)
	for _, tt := range []struct {
		name    string
		body    io.Reader
		size    int64
		limit   int64
		want    string
		wantErr string
	}{
		{name: "declared", body: strings.NewReader(`{"a":1}`), size: 7, limit: limit, want: `{"a":1}`},
		{name: "empty", body: strings.NewReader(""), size: 0, limit: limit, want: ""},
		{name: "unknown length", body: strings.NewReader(`{"a":1}`), size: -1, limit: limit, want: `{"a":1}`},
		{name: "one byte at a time", body: iotest.OneByteReader(strings.NewReader(`{"a":1}`)), size: 7, limit: limit, want: `{"a":1}`},
		{name: "shorter than declared", body: strings.NewReader(`{"a"`), size: 7, limit: limit, wantErr: "unexpected EOF"},
		{name: "longer than declared", body: strings.NewReader(`{"a":1}xx`), size: 7, limit: limit, wantErr: "longer than its Content-Length"},
		{name: "declared over the limit", body: strings.NewReader(""), size: limit + 1, limit: limit, wantErr: errResponseTooLarge.Error()},
		{name: "unknown length over the limit", body: strings.NewReader(strings.Repeat("a", limit+1)), size: -1, limit: limit, wantErr: errResponseTooLarge.Error()},
		{name: "declared above the preallocation bound", body: strings.NewReader(long), size: int64(len(long)), limit: 1 << 20, want: long},
		{name: "read error", body: iotest.ErrReader(errors.New("connection reset")), size: 7, limit: limit, wantErr: "connection reset"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBounded(tt.body, tt.size, tt.limit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %.20q, %v", got, err)
			}
		})
	}
}
