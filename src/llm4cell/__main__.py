from llm4cell.cli import main

main()
