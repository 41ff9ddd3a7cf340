from kbqa.cli import main

main()
