package wsgateway

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/MicahParks/jwkset"
)

// ErrInvalidKey is wrapped by the key parsers for input that holds no usable key.
var ErrInvalidKey = errors.New("wsgateway: invalid key")

// Keys are the keys the built-in JWT check verifies tokens with; a token verifies if any key
// of the type its `alg` names verifies it. The zero value holds no key. Keys are read-only
// once given to a Gateway (replace them whole with Gateway.SetJWTKeys).
type Keys struct {
	// HMAC are HS256, HS384 and HS512 secrets (ParseHMACKeys reads a file of them).
	HMAC [][]byte
	// Public are RSA (*rsa.PublicKey: RS256/384/512, PS256/384/512), ECDSA (*ecdsa.PublicKey:
	// ES256 on P-256, ES384 on P-384, ES512 on P-521) and Ed25519 (ed25519.PublicKey: EdDSA)
	// keys, tried whatever the token's `kid` (ParsePublicKeysPEM reads them).
	Public []crypto.PublicKey
	// JWKS are keys of a JSON Web Key Set held locally (ParseJWKS reads one): a token whose
	// header has a `kid` is tried only with the keys of that id.
	JWKS []JWK
}

// JWK is one public key of a JSON Web Key Set.
type JWK struct {
	// KID is the key id a token names in its header ("" when the set gives none).
	KID string
	// Alg, when not "", is the only algorithm the key may verify.
	Alg string
	// Key is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
}

// ParseHMACKeys reads HMAC secrets one per line (for rotation: any line verifies). Each line
// is trimmed of surrounding whitespace and empty lines are skipped; input with no key is an
// error wrapping ErrInvalidKey.
func ParseHMACKeys(b []byte) ([][]byte, error) {
	var keys [][]byte
	for line := range bytes.Lines(b) {
		if k := bytes.TrimSpace(line); len(k) > 0 {
			keys = append(keys, bytes.Clone(k))
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key (want one secret per line)", ErrInvalidKey)
	}
	return keys, nil
}

// ParsePublicKeysPEM reads every PEM block of b: "PUBLIC KEY" (PKIX: RSA, ECDSA or Ed25519),
// "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" (its public key). Private keys and other
// blocks are refused so that a secret is never mistaken for configuration. Errors wrap
// ErrInvalidKey and name the block.
func ParsePublicKeysPEM(b []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("%w: PEM block %d is %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", ErrInvalidKey, n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d: %w", ErrInvalidKey, n, err)
		}
		if !usableKey(key) {
			return nil, fmt.Errorf("%w: PEM block %d: %T is not an RSA, ECDSA (P-256, P-384, P-521) or Ed25519 key", ErrInvalidKey, n, key)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	return keys, nil
}

// ParseJWKS reads a JSON Web Key Set ({"keys":[...]}). Keys for encryption (`use` "enc"),
// symmetric keys (an HMAC secret does not belong in a key set: use HMAC keys) and key types
// the gateway cannot verify with are skipped; a set left with no key, or a key that does not
// parse, is an error wrapping ErrInvalidKey.
func ParseJWKS(b []byte) ([]JWK, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS: %w", ErrInvalidKey, err)
	}
	var keys []JWK
	for i, m := range set.Keys {
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: JWKS key %d (kid %q): %w", ErrInvalidKey, i, m.KID, err)
		}
		if k, ok := jwkOf(j); ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS has no signature verification key", ErrInvalidKey)
	}
	return keys, nil
}

// jwkOf converts a parsed JWK to a verification key, or reports that it is not one.
func jwkOf(j jwkset.JWK) (JWK, bool) {
	m := j.Marshal()
	if m.USE == jwkset.UseEnc {
		return JWK{}, false
	}
	key := j.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public() // a set that also carries private parts: keep only the public key
	}
	if !usableKey(key) {
		return JWK{}, false
	}
	return JWK{KID: m.KID, Alg: m.ALG.String(), Key: key}, true
}

// usableKey reports whether key is a public key type some algorithm verifies with.
func usableKey(key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return true
	case *ecdsa.PublicKey:
		return ecdsaAlg(k) != ""
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	}
	return false
}

func ecdsaAlg(k *ecdsa.PublicKey) string {
	switch k.Curve {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// keyFits reports whether a token signed with alg may be verified with key: the key's type
// must be the one the algorithm is defined for (so an RSA public key is never used as an
// HMAC secret, the classic algorithm confusion).
func keyFits(alg string, key any) bool {
	switch k := key.(type) {
	case []byte:
		return alg == "HS256" || alg == "HS384" || alg == "HS512"
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		return alg == ecdsaAlg(k)
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// tokenAlgs are the algorithms the built-in JWT check accepts ("none" is never one).
var tokenAlgs = []string{
	"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}
