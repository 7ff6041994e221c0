// minikube-pack packs a build context directory into a tar exactly as `minikube image build DIR`
// does before it copies it into the node: cmd/minikube/cmd/image.go createTar(dir) calls
// docker.CreateTarStream(dir, dockerFile) (third_party/go-dockerclient/tar.go, kubernetes/minikube
// at eb25dbc), where dockerFile is the value of `-f`/`--file`, empty by default. The minikube module
// itself is not on the Go module proxy, so that function's steps are written out here, line for line,
// on the same libraries at the versions minikube's go.mod pins: github.com/docker/docker
// v28.5.2+incompatible (pkg/archive) and github.com/moby/patternmatcher v0.6.0.
//
// Usage: minikube-pack [-f DOCKERFILE] DIR OUT.tar
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/docker/pkg/archive"
	"github.com/moby/patternmatcher"
)

func main() {
	dockerFile := flag.String("f", "", "the -f/--file value given to minikube image build")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: minikube-pack [-f DOCKERFILE] DIR OUT.tar")
		os.Exit(64)
	}
	if err := pack(flag.Arg(0), *dockerFile, flag.Arg(1)); err != nil {
		// minikube: exit.Error(reason.GuestImageBuild, "Failed to save dir", err)
		fmt.Fprintf(os.Stderr, "Failed to save dir: %v\n", err)
		os.Exit(1)
	}
}

func pack(dir, dockerFile, out string) error {
	stream, err := createTarStream(dir, dockerFile)
	if err != nil {
		return err
	}
	defer stream.Close()
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(file, stream); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// createTarStream is CreateTarStream of third_party/go-dockerclient/tar.go.
func createTarStream(srcPath, dockerfilePath string) (io.ReadCloser, error) {
	srcPath, err := filepath.Abs(srcPath)
	if err != nil {
		return nil, err
	}
	excludes, err := parseDockerignore(srcPath)
	if err != nil {
		return nil, err
	}
	includes := []string{"."}
	// Force-included only when .dockerignore excludes them, and only these two: .dockerignore and
	// the -f file. With no -f (the default), the Dockerfile is NOT force-included.
	forceIncludeFiles := []string{".dockerignore", dockerfilePath}
	for _, includeFile := range forceIncludeFiles {
		if includeFile == "" {
			continue
		}
		keepThem, err := patternmatcher.Matches(includeFile, excludes)
		if err != nil {
			return nil, fmt.Errorf("cannot match .dockerfileignore: '%s', error: %w", includeFile, err)
		}
		if keepThem {
			includes = append(includes, includeFile)
		}
	}
	if err := validateContextDirectory(srcPath, excludes); err != nil {
		return nil, err
	}
	return archive.TarWithOptions(srcPath, &archive.TarOptions{
		ExcludePatterns: excludes,
		IncludeFiles:    includes,
		Compression:     archive.Uncompressed,
		NoLchown:        true,
	})
}

// validateContextDirectory is tar.go's: every file that goes into the context must be readable.
func validateContextDirectory(srcPath string, excludes []string) error {
	return filepath.Walk(filepath.Join(srcPath, "."), func(filePath string, f os.FileInfo, err error) error {
		if relFilePath, relErr := filepath.Rel(srcPath, filePath); relErr != nil {
			return relErr
		} else if skip, matchErr := patternmatcher.Matches(relFilePath, excludes); matchErr != nil {
			return matchErr
		} else if skip {
			if f.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if err != nil {
			if os.IsPermission(err) {
				return fmt.Errorf("cannot stat %q: %w", filePath, err)
			}
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if f.Mode()&(os.ModeSymlink|os.ModeNamedPipe) != 0 {
			return nil
		}
		if !f.IsDir() {
			currentFile, err := os.Open(filePath)
			if err != nil {
				return fmt.Errorf("cannot open %q for reading: %w", filePath, err)
			}
			currentFile.Close()
		}
		return nil
	})
}

// parseDockerignore is tar.go's, quirks included: the file is split on "\n" as it is, so comment
// lines are patterns too (patternmatcher only trims and skips empty ones), unlike the docker CLI,
// which drops "#" lines (moby/buildkit frontend/dockerfile/dockerignore).
func parseDockerignore(root string) ([]string, error) {
	var excludes []string
	ignore, err := os.ReadFile(path.Join(root, ".dockerignore"))
	if err != nil && !os.IsNotExist(err) {
		return excludes, fmt.Errorf("error reading .dockerignore: %w", err)
	}
	excludes = strings.Split(string(ignore), "\n")
	return excludes, nil
}
