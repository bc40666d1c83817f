# Installs missing Debian packages. Sourced by the project's scripts; never asks questions (CI has no stdin).

deps_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    echo "error: installing packages needs root or passwordless sudo: $*" >&2
    return 1
  fi
}

# deps_ensure_apt PACKAGE...  installs the packages that are not installed yet.
deps_ensure_apt() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && { echo "apt packages present: $*"; return 0; }
  echo "installing with apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; refresh them only when the install needs it.
  if ! deps_as_root apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >/tmp/crm-security-apt.log 2>&1; then
    deps_as_root apt-get -o DPkg::Lock::Timeout=300 update -q >>/tmp/crm-security-apt.log 2>&1
    deps_as_root apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >>/tmp/crm-security-apt.log 2>&1 || {
      tail -n 20 /tmp/crm-security-apt.log >&2
      echo "error: apt-get install ${missing[*]} failed (log: /tmp/crm-security-apt.log)" >&2
      return 1
    }
  fi
}
