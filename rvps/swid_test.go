package rvps

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func swidMessage(xmlText string) []byte {
	msg, _ := json.Marshal(map[string]string{
		"version": "0.1.0",
		"type":    "swid",
		"payload": base64.StdEncoding.EncodeToString([]byte(xmlText)),
	})
	return msg
}

func TestSwidRegister(t *testing.T) {
	rim, err := os.ReadFile("testdata/rim.xml")
	if err != nil {
		t.Fatal(err)
	}
	s, st, _ := newService()
	ctx := context.Background()
	if err := s.Register(ctx, swidMessage(string(rim))); err != nil {
		t.Fatalf("Register: %v", err)
	}
	want := map[string][]string{
		"Sigil_Test_Vendor.GPU_FW.measurement_1": {
			"2c3a7d1f0e5b4e8c9a1d6f3b2e7c4a9d8b5f1e3c7a2d9b6e4f8c1a5d3b7e9f2c4a6d8b1e5f3c7a9d2b4e6f8a1c3d5e7f9b",
			"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0",
		},
		"Sigil_Test_Vendor.GPU_FW.measurement_2": {
			"5d41402abc4b2a76b9719d911017c592ae2b4f3e6a9c8d7b1e0f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
		},
		"Sigil_Test_Vendor.GPU_FW.measurement_3": {
			"7b1e0f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f705d41402abc4b2a76b9719d911017c592ae2b4f3e6a9c8d",
		},
	}
	if len(st.m) != len(want) {
		t.Errorf("stored keys %v, want %d", keysOf(st.m), len(want))
	}
	for id, w := range want {
		raw, err := s.Query(ctx, id)
		if err != nil || raw == nil {
			t.Fatalf("Query(%q) = %s, %v", id, raw, err)
		}
		var got []string
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("Query(%q) = %v, want %v", id, got, w)
		}
	}
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

const swidHead = `<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" ` +
	`xmlns:SHA384="http://www.w3.org/2001/04/xmlenc#sha384" ` +
	`xmlns:rim="https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/">`

func TestSwidMalformed(t *testing.T) {
	meta := `<Meta edition="E" rim:PlatformManufacturerStr="M"/>`
	res := `<Resource type="Measurement" index="1" SHA384:Hash0="ab"/>`
	tests := []struct {
		name, xml, wantErr string
	}{
		{"not XML", "hello", "parse manifest XML"},
		{"empty", "", "no root element"},
		{"unclosed", swidHead + meta + `<Payload>`, "parse manifest XML"},
		{"two roots", swidHead + meta + `<Payload/></SoftwareIdentity><x/>`, "more than one root"},
		{"no meta", swidHead + `<Payload>` + res + `</Payload></SoftwareIdentity>`, "could not find meta"},
		{"meta in wrong namespace", `<SoftwareIdentity xmlns:rim="https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"><Meta edition="E" rim:PlatformManufacturerStr="M"/><Payload/></SoftwareIdentity>`, "could not find meta"},
		{"no manufacturer", swidHead + `<Meta edition="E"/><Payload>` + res + `</Payload></SoftwareIdentity>`, "manufacturer"},
		{"manufacturer without namespace", swidHead + `<Meta edition="E" PlatformManufacturerStr="M"/><Payload/></SoftwareIdentity>`, "manufacturer"},
		{"no edition", swidHead + `<Meta rim:PlatformManufacturerStr="M"/><Payload/></SoftwareIdentity>`, "edition"},
		{"no payload", swidHead + meta + res + `</SoftwareIdentity>`, "could not find SWID payload"},
		{"no index", swidHead + meta + `<Payload><Resource type="Measurement" SHA384:Hash0="ab"/></Payload></SoftwareIdentity>`, "measurement index"},
		{"not UTF-8", swidHead + "<Meta edition=\"\xff\"/></SoftwareIdentity>", "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st, _ := newService()
			err := s.Register(context.Background(), swidMessage(tt.xml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Register error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(st.m) != 0 {
				t.Errorf("store written on error: %v", keysOf(st.m))
			}
		})
	}
}

func TestSwidEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		xml  string
		want map[string]string
	}{
		{
			name: "no measurements registers nothing",
			xml:  swidHead + `<Meta edition="E" rim:PlatformManufacturerStr="M"/><Payload/></SoftwareIdentity>`,
			want: map[string]string{},
		},
		{
			name: "meta after payload, dashes and spaces in names",
			xml: swidHead + `<Payload><Directory><Resource type="Measurement" index="a-b" SHA384:Hash0="0x1"/></Directory></Payload>` +
				`<Meta edition="ed-1" rim:PlatformManufacturerStr="Big  Co-op"/></SoftwareIdentity>`,
			want: map[string]string{"Big__Co_op.ed_1.measurement_a_b": `["0x1"]`},
		},
		{
			name: "only the first payload counts; empty hash skipped",
			xml: swidHead + `<Meta edition="E" rim:PlatformManufacturerStr="M"/>` +
				`<Payload><Resource type="Measurement" index="1" SHA384:Hash0="" SHA384:Hash1="01"/></Payload>` +
				`<Payload><Resource type="Measurement" index="2" SHA384:Hash0="02"/></Payload></SoftwareIdentity>`,
			want: map[string]string{"M.E.measurement_1": `["01"]`},
		},
		{
			name: "hash in another namespace ignored",
			xml: swidHead + `<Meta edition="E" rim:PlatformManufacturerStr="M"/>` +
				`<Payload><Resource xmlns:S256="http://www.w3.org/2001/04/xmlenc#sha256" type="Measurement" index="1" S256:Hash0="aa"/></Payload></SoftwareIdentity>`,
			want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st, _ := newService()
			if err := s.Register(context.Background(), swidMessage(tt.xml)); err != nil {
				t.Fatalf("Register: %v", err)
			}
			if len(st.m) != len(tt.want) {
				t.Errorf("stored keys %v, want %v", keysOf(st.m), tt.want)
			}
			for id, w := range tt.want {
				got, err := s.Query(context.Background(), id)
				if err != nil || string(got) != w {
					t.Errorf("Query(%q) = %s, %v; want %s", id, got, err, w)
				}
			}
		})
	}
}

func FuzzSwid(f *testing.F) {
	if rim, err := os.ReadFile("testdata/rim.xml"); err == nil {
		f.Add(string(rim))
	}
	f.Add(swidHead + `<Meta edition="E" rim:PlatformManufacturerStr="M"/><Payload/></SoftwareIdentity>`)
	f.Fuzz(func(t *testing.T, xmlText string) {
		_, _ = swidExtractor{}.Extract(base64.StdEncoding.EncodeToString([]byte(xmlText)))
	})
}
