package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		path    string
		want    string
		wantErr string
	}{
		{"owner only", write("a", "s3cr3t\n", 0o600), "s3cr3t", ""},
		{"group readable", write("b", "  v  ", 0o440), "v", ""},
		{"world readable", write("c", "v", 0o644), "", "accessible by other users"},
		{"world writable", write("d", "v", 0o602), "", "accessible by other users"},
		{"empty", write("e", " \n", 0o600), "", "is empty"},
		{"too large", write("f", strings.Repeat("x", maxSecretBytes+1), 0o600), "", "larger than"},
		{"missing", filepath.Join(dir, "absent"), "", "no such file"},
		{"directory", dir, "", "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFile(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), "s3cr3t") {
					t.Fatal("error leaks the secret")
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
