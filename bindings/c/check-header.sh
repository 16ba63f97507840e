#!/usr/bin/env bash
# Checks include/wirecore.h (make lint-c): it declares only wirecore_* functions (never a libc
# one, which C++ would see as a conflicting redeclaration), and it compiles as C and as C++,
# included before and after the libc headers, warnings as errors.
set -euo pipefail
header=${1:-include/wirecore.h}
dir=$(dirname "$header")
foreign=$(grep -nE '^(extern )?[A-Za-z_][A-Za-z0-9_ *]*[ *][A-Za-z_][A-Za-z0-9_]*\(' "$header" |
  grep -vE '[ *]wirecore_[a-z0-9_]+\(' || true)
if [[ -n $foreign ]]; then
  echo "$header declares functions that are not wirecore's:" >&2
  echo "$foreign" >&2
  exit 1
fi
libc='#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>'
use='int main(void) { return wirecore_abi_version() == WIRECORE_ABI_VERSION ? 0 : 1; }'
for lang in c c++; do
  if [[ $lang == c ]]; then cc=(cc -std=c11); else cc=(g++ -std=c++17); fi
  for order in first last; do
    if [[ $order == first ]]; then src="#include \"wirecore.h\"
$libc"; else src="$libc
#include \"wirecore.h\""; fi
    echo "${cc[0]} -fsyntax-only: wirecore.h included $order"
    printf '%s\n%s\n' "$src" "$use" |
      "${cc[@]}" -x "$lang" -fsyntax-only -Wall -Wextra -Werror -pedantic -Wredundant-decls -I"$dir" -
  done
done
