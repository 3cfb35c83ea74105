from common.migrate import run_env
from services.instances.models import Base

run_env(Base.metadata)
