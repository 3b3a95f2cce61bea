"""A service process that submits in its own transaction and dies by SIGKILL right after
COMMIT returns (`after`), or right before it (`before`): `python -m tests.producer_child MODE`.
Prints the job id first. DATABASE_URL and PRODUCER_KEY come from the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sqlalchemy import text

from conveyor import Producer, kinds
from conveyor.db.engine import create_engine


async def main(mode: str) -> None:
    url = os.environ["DATABASE_URL"]
    engine = create_engine(url, pool_size=1)
    producer = Producer(
        engine, key=os.environ["PRODUCER_KEY"], registry=kinds.load(kinds.DEMO_MODULES)
    )
    async with engine.connect() as conn:
        tx = await conn.begin()
        await conn.execute(text("INSERT INTO orders (id) VALUES (:id)"), {"id": mode})
        job = await producer.submit("demo.noop", connection=conn)
        sys.stdout.write(f"{job.id}\n")
        sys.stdout.flush()
        if mode == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        await tx.commit()
        os.kill(os.getpid(), signal.SIGKILL)  # nothing of the producer runs after COMMIT


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
