#!/bin/bash
# Builds a distroless-style root filesystem for deckhand in OUT: the binary,
# every file of exactly the Debian packages whose shared libraries it (and the
# Qt SQL driver plugins it loads at run time) needs, and a dpkg status file
# listing those packages, so image scanners (Trivy, Grype, Syft) still see
# what is inside. No shell, no package manager, no coreutils.
#
# usage: assemble-rootfs.sh OUT BINARY
set -euo pipefail

out=$1
binary=$2

rm -rf "$out"
mkdir -p "$out"
# bookworm is merged-/usr: keep the same top-level symlinks so library paths
# recorded by dpkg (/lib/...) and by ld.so (/usr/lib/...) both resolve.
for link in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$link" ]; then
        target=$(readlink "/$link")
        mkdir -p "$out/${target#/}"
        ln -s "$target" "$out/$link"
    fi
done

# Everything that gets loaded: the binary, the SQL driver plugins, and the
# transitive shared-library closure of both.
# The SQL driver plugins wherever this architecture's packages put them.
mapfile -t plugins < <(dpkg-query -L libqt6sql6-psql libqt6sql6-sqlite \
                       | grep -E '/sqldrivers/libqsql(psql|ite)\.so$')
if [ "${#plugins[@]}" -ne 2 ]; then
    echo "assemble-rootfs: expected the QPSQL and QSQLITE plugins, found: ${plugins[*]}" >&2
    exit 1
fi
roots=("$binary" "${plugins[@]}")
if missing=$(for f in "${roots[@]}"; do ldd "$f"; done | grep 'not found'); then
    echo "assemble-rootfs: unresolved libraries:" >&2
    echo "$missing" >&2
    exit 1
fi
libs=$(for f in "${roots[@]}"; do ldd "$f"; done \
       | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u)

owner_of() {
    # dpkg records some paths under /lib and some under /usr/lib; try both.
    local path=$1 alt
    case $path in
        /usr/*) alt=${path#/usr} ;;
        *) alt=/usr$path ;;
    esac
    for candidate in "$path" "$(readlink -f "$path")" "$alt"; do
        if dpkg-query -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1; then
            return 0
        fi
    done
    echo "assemble-rootfs: no package owns $path" >&2
    return 1
}

pkgs=$( { for f in $libs "${roots[@]:1}"; do owner_of "$f"; done; echo base-files; echo libc6; } \
        | sort -u)
echo "assemble-rootfs: packages:" $pkgs

# All regular files and symlinks of those packages, without documentation.
for pkg in $pkgs; do
    dpkg-query -L "$pkg"
done | grep -Ev '^/usr/share/(doc|man|info|lintian|locale|bug|gcc|gdb)/' \
     | grep -Ev '^/usr/lib/[^/]+/gconv/' \
     | sort -u | while read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then
        printf '%s\n' "${f#/}"
    fi
done > /tmp/rootfs.files
tar -C / --no-recursion -cf - -T /tmp/rootfs.files | tar -C "$out" -xf -

install -D -m 0755 "$binary" "$out$binary"

# Scanner-visible package database: the status entries of exactly these packages.
mkdir -p "$out/var/lib/dpkg"
dpkg-query -s $pkgs > "$out/var/lib/dpkg/status"

# Users, writable places, linker cache.
mkdir -p "$out/etc" "$out/tmp" "$out/var/lib/deckhand"
chmod 1777 "$out/tmp"
chown 10001:10001 "$out/var/lib/deckhand"
chmod 0750 "$out/var/lib/deckhand"
cat > "$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
deckhand:x:10001:10001:deckhand:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat > "$out/etc/group" <<'EOF'
root:x:0:
deckhand:x:10001:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$out/etc/nsswitch.conf"
ldconfig -r "$out"

# The result must run on its own: this fails the build if a library is missing.
chroot "$out" "$binary" --version
du -sh "$out"
