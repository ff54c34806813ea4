package sigv4

// Credentials resolves an access key to its secret.
//
// Secret is called once per authenticated request and may be called
// concurrently.
type Credentials interface {
	Secret(accessKey string) (secret string, ok bool)
}

// StaticCredentials maps access keys to secrets. It must not be modified
// while a Verifier uses it.
type StaticCredentials map[string]string

// Secret implements Credentials.
func (c StaticCredentials) Secret(accessKey string) (string, bool) {
	s, ok := c[accessKey]
	return s, ok
}
