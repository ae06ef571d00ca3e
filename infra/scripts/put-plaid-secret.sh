#!/usr/bin/env bash
# Create or rotate the Plaid secret from the operator's shell, without the keys ever being
# echoed, written to disk, or passed on a command line (where `ps` and shell history see them).
#
#   infra/scripts/put-plaid-secret.sh --secret-id plaid-link-token-dev/plaid-credentials
#   infra/scripts/put-plaid-secret.sh --secret-id prod/plaid-link-token --create \
#       --kms-key-id arn:aws:kms:...:key/... --region us-east-1 --profile prod
#
# Options:
#   --secret-id ID     name or ARN of the secret (the stack's PlaidSecretId output)
#   --create           create the secret if it does not exist yet (a secret the stack manages
#                      already exists: it is created empty)
#   --kms-key-id KEY   customer managed key for --create (default: aws/secretsmanager)
#   --hmac-key MODE    keep (default): keep the current user_id_hmac_key, or generate one
#                      when the secret has none (32 random bytes, hex);
#                      new: generate a new random key (every user's client_user_id changes!);
#                      none: store no key (Plaid receives the raw JWT sub: avoid when the sub
#                      is personal data such as an email)
#   --region R, --profile P   passed to the AWS CLI
#
# Needs the AWS CLI and Python 3.13 (found as `make` finds it: infra/scripts/find-python313.sh),
# which parses and writes the secret's JSON with the function's own rules
# (infra/scripts/plaid_secret_json.py).
#
# Before asking for the keys it shows the region, and stops on anything but "not found" when it
# looks the secret up, on anything but "no value yet" when it reads the current value to keep
# its user_id_hmac_key (access denied, expired credentials...), and when that value or its key
# cannot be read (not JSON, a key that is not a usable string).
# The keys are read with `read -s` from the terminal (or from standard input when it is not
# one), checked, assembled into {"client_id": ..., "secret": ..., "user_id_hmac_key": ...}
# by Python reading them on a pipe, and handed to the AWS CLI through a pipe (--secret-string
# file:///dev/stdin). Running functions pick the new value up within PLAID_SECRET_TTL_SECONDS
# (default 5 min), or at once if Plaid rejects the old keys (INVALID_API_KEYS forces a re-read).
set -euo pipefail
set +o xtrace  # never trace this script: a trace would print the keys

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
die() { printf 'put-plaid-secret: %s\n' "$*" >&2; exit 1; }

secret_id="" create=false kms_key="" hmac_mode=keep aws_args=() region="" profile="${AWS_PROFILE:-}"
while (($#)); do
  case "$1" in
    --secret-id) secret_id="${2:?--secret-id needs a value}"; shift 2 ;;
    --create) create=true; shift ;;
    --kms-key-id) kms_key="${2:?--kms-key-id needs a value}"; shift 2 ;;
    --hmac-key) hmac_mode="${2:?--hmac-key needs keep, new or none}"; shift 2 ;;
    --region) region="${2:?--region needs a value}"; shift 2 ;;
    --profile) aws_args+=("$1" "${2:?--profile needs a value}"); profile="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
  esac
done
[[ -n "$secret_id" ]] || { printf 'missing --secret-id\n\n' >&2; usage 2; }
[[ "$hmac_mode" =~ ^(keep|new|none)$ ]] || die "--hmac-key must be keep, new or none"
command -v aws >/dev/null || die "the AWS CLI (aws) is not installed"
# Python, not a regular expression or jq: the same JSON parser and validation as the function,
# and it comes with the Python 3.13 the rest of the repository already needs.
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=$("$scripts/find-python313.sh") || die "Python 3.13 is needed to read and write the secret's JSON"
# As isolated as `python -I`: an empty environment but for the import path of the function's
# own code (handler/), no user site, no script directory on sys.path.
secret_json() { env -i PYTHONPATH="$scripts/../../handler" "$python" -s -P "$scripts/plaid_secret_json.py" "$@"; }

client_id="" secret="" current="" json=""
trap 'client_id="" secret="" current="" json=""' EXIT

# Plaid's keys are hex: anything else is a paste gone wrong (a quote, a space, a newline).
ask() {  # ask VAR PROMPT: read a value without echo
  local value
  if [[ -t 0 ]]; then
    IFS= read -r -s -p "$2: " value
    printf '\n' >&2
  else
    IFS= read -r value || true
  fi
  [[ -n "$value" ]] || die "$2: empty"
  [[ "$value" =~ ^[A-Za-z0-9_-]+$ ]] || die "$2: only letters, digits, '-' and '_' are expected"
  printf -v "$1" '%s' "$value"
}

# Everything that can fail is checked before the keys are typed.
[[ -n "$region" ]] || region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[[ -n "$region" ]] || region=$(aws "${aws_args[@]}" configure get region 2>/dev/null || true)
[[ -n "$region" ]] || die "no AWS region: pass --region or configure one"
echo "secret '$secret_id' in region $region${profile:+ (profile $profile)}" >&2

aws_call() {  # aws_call OUT_VAR ERR_VAR ARGS...: run the CLI, keep its output and its error text
  local -n out_ref="$1" err_ref="$2"
  local err_file status=0
  shift 2
  err_file=$(mktemp)
  out_ref=$(aws "${aws_args[@]}" --region "$region" "$@" 2>"$err_file") || status=$?
  err_ref=$(<"$err_file")
  rm -f "$err_file"
  return "$status"
}

exists=true describe_out="" describe_err=""
if ! aws_call describe_out describe_err secretsmanager describe-secret --secret-id "$secret_id" \
  --query ARN --output text; then
  [[ "$describe_err" == *ResourceNotFoundException* ]] || die "cannot read secret '$secret_id' in $region: ${describe_err:-the AWS CLI failed}"
  exists=false
  $create || die "secret '$secret_id' not found in $region (deploy the stack first, check --region/--profile, or pass --create)"
fi

generating="generating a user_id_hmac_key, so Plaid gets an HMAC of the JWT sub instead of the sub"
case "$hmac_mode" in
  keep)
    # The current value stays in memory; its key is taken from it when the new one is built.
    # Only "no value yet" (a secret the stack created empty) means there is none: any other
    # failure stops here, or the new version would silently replace the key and change every
    # user's client_user_id at Plaid.
    value_err=""
    if $exists; then
      if aws_call current value_err secretsmanager get-secret-value --secret-id "$secret_id" \
        --query SecretString --output text; then
        state=$(printf '%s' "$current" | secret_json inspect) ||
          die "cannot keep the user_id_hmac_key of '$secret_id' (fix its value, or pass --hmac-key new|none knowingly)"
        if [[ "$state" == key ]]; then
          echo "keeping the current user_id_hmac_key (client_user_id values stay the same)" >&2
        else
          echo "the current value has no user_id_hmac_key: $generating (every user's client_user_id at Plaid changes once; --hmac-key none keeps sending the sub)" >&2
        fi
      elif [[ "$value_err" == *ResourceNotFoundException* ]]; then
        echo "the secret has no value yet: $generating" >&2
      else
        die "cannot read the current value of '$secret_id' to keep its user_id_hmac_key: ${value_err:-the AWS CLI failed} (fix access, or pass --hmac-key new|none knowingly)"
      fi
    else
      echo "a new secret: $generating" >&2
    fi
    ;;
  new) echo "generating a new user_id_hmac_key: every user's client_user_id at Plaid changes" >&2 ;;
  none) echo "storing no user_id_hmac_key: Plaid receives the raw JWT sub as client_user_id" >&2 ;;
esac

ask client_id "Plaid client_id"
ask secret "Plaid secret (for the stack's PLAID_ENV: sandbox or production)"
[[ ${#client_id} -eq 24 ]] || printf 'warning: a Plaid client_id is usually 24 characters, this one has %d\n' "${#client_id}" >&2
[[ ${#secret} -eq 30 ]] || printf 'warning: a Plaid secret is usually 30 characters, this one has %d\n' "${#secret}" >&2

# Python builds the JSON (escapes included); the keys and the current value reach it on a pipe.
json=$(printf '%s\n%s\n%s' "$client_id" "$secret" "$current" | secret_json build "$hmac_mode") ||
  die "nothing stored"

# printf is a shell builtin: the value goes through a pipe, never through an argv.
if $exists; then
  version=$(printf '%s' "$json" | aws "${aws_args[@]}" --region "$region" secretsmanager put-secret-value \
    --secret-id "$secret_id" --secret-string file:///dev/stdin --query VersionId --output text)
  echo "stored a new version ($version) of '$secret_id'" >&2
else
  create_args=(--name "$secret_id" --description "Plaid API keys for the link-token service")
  [[ -n "$kms_key" ]] && create_args+=(--kms-key-id "$kms_key")
  arn=$(printf '%s' "$json" | aws "${aws_args[@]}" --region "$region" secretsmanager create-secret "${create_args[@]}" \
    --secret-string file:///dev/stdin --query ARN --output text)
  echo "created '$arn'" >&2
fi
echo "running functions use it within PLAID_SECRET_TTL_SECONDS (default 300 s)" >&2
