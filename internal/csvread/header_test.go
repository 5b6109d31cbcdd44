package csvread

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

func TestFile_UserName(t *testing.T) {
	f := func(header, want string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "in.csv")
		if err := os.WriteFile(path, []byte(header+"\n1,A,B,2024-01-01,1,MXN,x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := UserHeader(path, Options{Schema: feature.InvoiceSchema})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("header %q: user column named %q, want %q", header, got, want)
		}
	}
	f("invoice_id,issuer,receiver,issued_at,amount,currency,description", "issuer")
	f("id, Issuer_ID ,receiver_id,fecha,monto,moneda,descripcion", "Issuer_ID")
	f("folio,RFC Emisor,rfc_receptor,fecha,monto,moneda,concepto", "RFC Emisor")
	f("\xef\xbb\xbfid,user,customer,date,total,ccy,text", "user")
}
