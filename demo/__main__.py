"""The offline end-to-end demo; see demo/run.py."""

from lalm.demo.run import main

if __name__ == "__main__":
    main()
