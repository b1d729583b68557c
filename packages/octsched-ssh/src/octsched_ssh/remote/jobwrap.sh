# oct job wrapper: the command of a job's tmux session.
# usage: sh jobwrap.sh JOB_DIR CONTROL_PREFIX TOKEN SESSION PYTHON [NAME=VALUE...]
# Runs the job, then records "EXIT_STATUS TOKEN" in CONTROL_PREFIX.status
# atomically (written aside, then renamed) and signals the tmux channel named
# after the session, so `tmux wait-for SESSION` works for a person or a script.
job_dir=$1
control=$2
token=$3
session=$4
python=$5
shift 5
if cd "$job_dir"; then
    env "$@" "$python" -m octcore.job spec.json >job.log 2>&1
    status=$?
else
    status=127
fi
printf '%s %s\n' "$status" "$token" >"$control.status.tmp" && mv -f "$control.status.tmp" "$control.status"
tmux wait-for -S "$session" 2>/dev/null
exit "$status"
