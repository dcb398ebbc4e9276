"""marathon-python 0.13.0 against our Marathon API: the calls its users make most."""
import sys
import time

from marathon import MarathonClient
from marathon.exceptions import NotFoundError
from marathon.models import MarathonApp

url = sys.argv[1]
c = MarathonClient(url)

info = c.get_info()
assert info.name, "get_info has a name"

app = c.create_app("e2e-sleepy", MarathonApp(cmd="sleep 1000", cpus=0.01, mem=8, instances=1))
assert app.id == "/e2e-sleepy", app.id

assert any(a.id == "/e2e-sleepy" for a in c.list_apps()), "listed"
deadline = time.time() + 30
while time.time() < deadline:
    got = c.get_app("e2e-sleepy")
    if got.tasks_running == 1:
        break
    time.sleep(0.5)
else:
    raise AssertionError("task never ran: %r" % got.tasks_running)

tasks = c.list_tasks("e2e-sleepy")
assert len(tasks) == 1 and tasks[0].app_id == "/e2e-sleepy", tasks

c.scale_app("e2e-sleepy", instances=2)
deadline = time.time() + 30
while time.time() < deadline and c.get_app("e2e-sleepy").tasks_running != 2:
    time.sleep(0.5)
assert c.get_app("e2e-sleepy").tasks_running == 2, "scaled to 2"

c.update_app("e2e-sleepy", MarathonApp(cmd="sleep 2000", cpus=0.01, mem=8, instances=1), force=True)
deps = c.list_deployments()
assert isinstance(deps, list)

c.delete_app("e2e-sleepy", force=True)
deadline = time.time() + 30
while time.time() < deadline:
    try:
        c.get_app("e2e-sleepy")
    except NotFoundError:
        break
    time.sleep(0.5)
else:
    raise AssertionError("app not deleted")
print("marathon-python: ok")
